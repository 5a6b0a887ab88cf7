"""scikit-learn's folds of the bundled digits labels, for tapegrad-data's k-fold tests.

    python3 scripts/kfold_reference.py > crates/data/tests/reference/kfold_digits.json

For KFold(5) and StratifiedKFold(5), unshuffled, and StratifiedKFold(3) on the labels'
first 101 entries (an uneven case): the fold each sample is held out in.
"""
import gzip, json
import numpy as np
import sklearn
from sklearn.model_selection import KFold, StratifiedKFold

y = np.loadtxt(gzip.open("data/digits.csv.gz", "rt"), delimiter=",")[:, 64].astype(int)


def test_folds(splitter, y):
    out = np.full(len(y), -1)
    for f, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        out[test] = f
    return out.tolist()


print(json.dumps({
    "generator": "scripts/kfold_reference.py",
    "sklearn": sklearn.__version__,
    "kfold_5": test_folds(KFold(5), y),
    "stratified_5": test_folds(StratifiedKFold(5), y),
    "stratified_3_first_101": test_folds(StratifiedKFold(3), y[:101]),
}))
