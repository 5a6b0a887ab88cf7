//! The per-epoch history of a run, written as CSV and JSON (what the plots read back).

use serde_json::{json, Value};
use tapegrad_core::{Error, Result};

/// One epoch's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Training loss per sample (weighted by samples over the epoch's batches).
    pub train_loss: f64,
    /// Training accuracy.
    pub train_accuracy: f64,
    /// Validation loss per sample (NaN without a validation set).
    pub val_loss: f64,
    /// Validation accuracy (NaN without a validation set).
    pub val_accuracy: f64,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// Seconds of the training pass (forward, backward, update).
    pub train_seconds: f64,
    /// Seconds of the validation pass.
    pub eval_seconds: f64,
}

impl EpochRecord {
    /// Whether two records agree in everything but their timings (what a resumed run must
    /// reproduce exactly).
    pub fn same_numbers(&self, other: &EpochRecord) -> bool {
        let eq = |a: f64, b: f64| a.to_bits() == b.to_bits();
        self.epoch == other.epoch
            && eq(self.train_loss, other.train_loss)
            && eq(self.train_accuracy, other.train_accuracy)
            && eq(self.val_loss, other.val_loss)
            && eq(self.val_accuracy, other.val_accuracy)
            && eq(self.lr, other.lr)
    }
}

/// Every epoch of a run so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The epochs, in order.
    pub epochs: Vec<EpochRecord>,
}

const COLUMNS: [&str; 8] = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "train_seconds",
    "eval_seconds",
];

fn err(origin: &str, m: impl Into<String>) -> Error {
    Error::Data {
        path: origin.to_string(),
        message: m.into(),
    }
}

impl History {
    /// The last epoch, if any.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// Whether both histories agree epoch for epoch in everything but the timings.
    pub fn same_numbers(&self, other: &History) -> bool {
        self.epochs.len() == other.epochs.len()
            && self
                .epochs
                .iter()
                .zip(&other.epochs)
                .all(|(a, b)| a.same_numbers(b))
    }

    /// As CSV: a header line, then one line per epoch (numbers printed so they read back
    /// exactly).
    pub fn to_csv(&self) -> String {
        let mut s = COLUMNS.join(",") + "\n";
        for r in &self.epochs {
            s += &format!(
                "{},{:?},{:?},{:?},{:?},{:?},{:?},{:?}\n",
                r.epoch,
                r.train_loss,
                r.train_accuracy,
                r.val_loss,
                r.val_accuracy,
                r.lr,
                r.train_seconds,
                r.eval_seconds
            );
        }
        s
    }

    /// Reads [`History::to_csv`]'s output.
    ///
    /// # Errors
    /// [`Error::Data`] naming `origin` and the line for another header or a bad row.
    pub fn from_csv(text: &str, origin: &str) -> Result<History> {
        let mut lines = text.lines();
        if lines.next() != Some(&COLUMNS.join(",")) {
            return Err(err(
                origin,
                format!("line 1: the header must be {}", COLUMNS.join(",")),
            ));
        }
        let mut epochs = vec![];
        for (i, line) in lines.enumerate() {
            let f: Vec<&str> = line.split(',').collect();
            let num = |k: usize| -> Result<f64> {
                f.get(k).and_then(|v| v.parse::<f64>().ok()).ok_or_else(|| {
                    err(
                        origin,
                        format!("line {}: field {} is not a number", i + 2, k + 1),
                    )
                })
            };
            if f.len() != COLUMNS.len() {
                return Err(err(
                    origin,
                    format!(
                        "line {}: {} fields, expected {}",
                        i + 2,
                        f.len(),
                        COLUMNS.len()
                    ),
                ));
            }
            epochs.push(EpochRecord {
                epoch: f[0].parse().map_err(|_| {
                    err(origin, format!("line {}: the epoch is not a count", i + 2))
                })?,
                train_loss: num(1)?,
                train_accuracy: num(2)?,
                val_loss: num(3)?,
                val_accuracy: num(4)?,
                lr: num(5)?,
                train_seconds: num(6)?,
                eval_seconds: num(7)?,
            });
        }
        Ok(History { epochs })
    }

    /// As a JSON array of objects (NaN, which JSON lacks, as `null`).
    pub fn to_json(&self) -> String {
        let n = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        let rows: Vec<Value> = self
            .epochs
            .iter()
            .map(|r| {
                json!({
                    "epoch": r.epoch,
                    "train_loss": n(r.train_loss),
                    "train_accuracy": n(r.train_accuracy),
                    "val_loss": n(r.val_loss),
                    "val_accuracy": n(r.val_accuracy),
                    "lr": n(r.lr),
                    "train_seconds": n(r.train_seconds),
                    "eval_seconds": n(r.eval_seconds),
                })
            })
            .collect();
        Value::Array(rows).to_string()
    }

    /// Reads [`History::to_json`]'s output (`null` as NaN).
    ///
    /// # Errors
    /// [`Error::Data`] naming `origin` for anything else.
    pub fn from_json(text: &str, origin: &str) -> Result<History> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| err(origin, format!("not JSON: {e}")))?;
        let rows = v
            .as_array()
            .ok_or_else(|| err(origin, "not a JSON array"))?;
        let mut epochs = vec![];
        for (i, r) in rows.iter().enumerate() {
            let f = |k: &str| -> Result<f64> {
                match &r[k] {
                    Value::Null => Ok(f64::NAN),
                    v => v.as_f64().ok_or_else(|| {
                        err(origin, format!("epoch {}: `{k}` is not a number", i + 1))
                    }),
                }
            };
            epochs.push(EpochRecord {
                epoch: r["epoch"]
                    .as_u64()
                    .ok_or_else(|| err(origin, format!("entry {}: no epoch", i + 1)))?
                    as usize,
                train_loss: f("train_loss")?,
                train_accuracy: f("train_accuracy")?,
                val_loss: f("val_loss")?,
                val_accuracy: f("val_accuracy")?,
                lr: f("lr")?,
                train_seconds: f("train_seconds")?,
                eval_seconds: f("eval_seconds")?,
            });
        }
        Ok(History { epochs })
    }

    /// Writes `history.csv` and `history.json` into `dir` (atomically each).
    ///
    /// # Errors
    /// [`Error::Io`] if the folder cannot be written.
    pub fn write(&self, dir: &std::path::Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let atomic = tapegrad_core::checkpoint::write_atomic;
        atomic(&dir.join("history.csv"), self.to_csv().as_bytes())?;
        atomic(&dir.join("history.json"), self.to_json().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_read_back_exactly() {
        let h = History {
            epochs: vec![
                EpochRecord {
                    epoch: 1,
                    train_loss: 0.1 + 0.2,
                    train_accuracy: 2.0 / 3.0,
                    val_loss: f64::NAN,
                    val_accuracy: f64::NAN,
                    lr: 1e-3,
                    train_seconds: 0.5,
                    eval_seconds: 0.0,
                },
                EpochRecord {
                    epoch: 2,
                    train_loss: 1.0 / 7.0,
                    train_accuracy: 0.75,
                    val_loss: 0.25,
                    val_accuracy: 0.5,
                    lr: 9.9e-4,
                    train_seconds: 0.4,
                    eval_seconds: 0.01,
                },
            ],
        };
        assert!(History::from_csv(&h.to_csv(), "h.csv")
            .unwrap()
            .same_numbers(&h));
        assert!(History::from_json(&h.to_json(), "h.json")
            .unwrap()
            .same_numbers(&h));
        let e = History::from_csv("epoch,x\n", "h.csv")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.csv: line 1"), "{e}");
        let e = History::from_csv(&(COLUMNS.join(",") + "\n1,2,x,3,4,5,6,7\n"), "h.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: field 3"), "{e}");
    }
}
