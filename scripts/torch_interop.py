"""Weights between PyTorch and tapegrad, both directions (run by hand; CI has no PyTorch).

    python scripts/torch_interop.py make   crates/nn/tests/reference/torch_mlp   # PyTorch -> file + expected outputs
    python scripts/torch_interop.py check  PATH.safetensors PATH.json            # tapegrad file -> PyTorch, compare

`make` builds nn.Sequential(Linear(5,8), BatchNorm1d(8), ReLU(), Linear(8,3)) (seed 0), runs three
training-mode batches so the batch-norm running statistics move, and writes the state_dict with
safetensors.torch.save_file, plus a JSON file with a fixed input and the model's eval-mode output.
`check` loads a tapegrad-written file into the same architecture (strict) and compares its eval
output on the JSON's input with the JSON's output.
"""
import json, sys
import torch
import torch.nn as nn
from safetensors.torch import save_file, load_file


def model():
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def make(prefix):
    torch.manual_seed(0)
    m = model()
    m.train()
    for _ in range(3):
        m(torch.randn(16, 5) * 2 + 1)
    m.eval()
    x = torch.linspace(-2, 2, 20).reshape(4, 5)
    with torch.no_grad():
        y = m(x)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, prefix + ".safetensors")
    json.dump({"generator": "scripts/torch_interop.py make", "torch": torch.__version__,
               "input": {"shape": list(x.shape), "data": x.flatten().tolist()},
               "output": {"shape": list(y.shape), "data": y.flatten().tolist()}},
              open(prefix + ".json", "w"), indent=1)
    print("wrote", prefix + ".safetensors", prefix + ".json")


def check(path, ref):
    m = model()
    m.load_state_dict(load_file(path), strict=True)
    m.eval()
    r = json.load(open(ref))
    x = torch.tensor(r["input"]["data"]).reshape(r["input"]["shape"])
    with torch.no_grad():
        y = m(x)
    want = torch.tensor(r["output"]["data"]).reshape(r["output"]["shape"])
    err = (y - want).abs().max().item()
    print(f"PyTorch loaded {path} (strict): max |output difference| = {err:.3g}")
    sys.exit(0 if err < 1e-5 else 1)


if __name__ == "__main__":
    {"make": lambda: make(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
