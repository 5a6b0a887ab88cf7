//! Kill a training run and resume it: the final parameters and history are bit-identical
//! to those of an uninterrupted run.
//!
//! The run is the main job's recipe (digits, shortened to 4 epochs of 21 steps). A child
//! process — this test binary again, told by an environment variable — trains with
//! checkpoints and aborts (`std::process::abort`, no unwinding, no clean-up) at a chosen
//! step; the test then resumes from the checkpoint the child left and compares. Two cases:
//! a checkpoint every 5 steps and an abort at step 33 (inside epoch 2, resumed from step
//! 30), and checkpoints at epoch ends only with an abort at step 43 (the first step of
//! epoch 3, resumed from the end of epoch 2).

#[path = "../examples/common/recipe.rs"]
mod recipe;

use std::path::{Path, PathBuf};
use std::process::Command;

use tapegrad::core::checkpoint::Checkpoint;
use tapegrad::prelude::*;
use tapegrad::train::{Callback, Control, EpochEnd, StepEnd};

const CHILD: &str = "TAPEGRAD_RESUME_CHILD";

/// Aborts the process at step `at` (when set): the crash.
struct AbortAt(Option<usize>);

impl Callback<f32> for AbortAt {
    fn name(&self) -> &str {
        "abort_at"
    }
    fn on_step(&mut self, step: &mut StepEnd<'_, f32>) -> Control {
        if Some(step.step) == self.0 {
            std::process::abort();
        }
        Control::Continue
    }
    fn on_epoch_end(&mut self, _e: &mut EpochEnd<'_, f32>) -> Result<Control> {
        Ok(Control::Continue)
    }
    fn save_state(&self, _ck: &mut Checkpoint, _prefix: &str) {}
    fn load_state(&mut self, _ck: &Checkpoint, _prefix: &str) -> Result<()> {
        Ok(())
    }
}

fn recipe() -> recipe::Recipe {
    recipe::Recipe {
        epochs: 4,
        seed: 5,
        augment: true, // the augmentation stream is resumed too
        ..recipe::Recipe::digits()
    }
}

fn run(dir: &Path, every: usize, abort: Option<usize>, resume: Option<PathBuf>) -> recipe::Trained {
    let r = recipe();
    let data = recipe::digits_splits(r.seed).unwrap();
    let opts = recipe::RunOptions {
        progress: Progress::Quiet,
        dir: Some(dir.to_path_buf()),
        every_steps: every,
        resume,
        extra: Some(Box::new(AbortAt(abort))),
        ..Default::default()
    };
    recipe::train(&r, &data, opts).unwrap()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad-resume-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// In the child: train until the abort. Outside it: nothing.
#[test]
fn child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = spec.split(';');
    let dir = PathBuf::from(parts.next().unwrap());
    let every: usize = parts.next().unwrap().parse().unwrap();
    let at: usize = parts.next().unwrap().parse().unwrap();
    run(&dir, every, Some(at), None);
    unreachable!("the run should have aborted at step {at}");
}

fn kill_and_resume(tag: &str, every: usize, at: usize, resumed_step: usize) {
    let whole_dir = tmp(&format!("{tag}-whole"));
    let whole = run(&whole_dir, every, None, None);

    let dir = tmp(tag);
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env(CHILD, format!("{};{every};{at}", dir.display()))
        .status()
        .unwrap();
    assert!(
        !status.success(),
        "the child should have been killed by its abort"
    );
    let last = dir.join("last.ckpt");
    let ck = Checkpoint::load(&last).unwrap();
    assert_eq!(
        ck.meta("trainer.step"),
        Some(resumed_step.to_string().as_str())
    );

    let resumed = run(&dir, every, None, Some(last));
    assert_eq!(resumed.outcome.steps, whole.outcome.steps);
    assert!(
        resumed.history.same_numbers(&whole.history),
        "histories differ:\n{:?}\n{:?}",
        resumed.history,
        whole.history
    );
    for (_, p) in whole.store.iter() {
        let k = resumed.store.key(&p.name).unwrap();
        let (a, b) = (p.value.to_vec(), resumed.store.value(k).to_vec());
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{} differs after the resume",
            p.name
        );
    }
    assert_eq!(resumed.test.predicted, whole.test.predicted);
    // The files the uninterrupted run and the resumed one left are the same state.
    let (a, b) = (
        Checkpoint::load(whole_dir.join("last.ckpt")).unwrap(),
        Checkpoint::load(dir.join("last.ckpt")).unwrap(),
    );
    for name in a.names() {
        assert_eq!(a.get(name), b.get(name), "{name}");
    }
    std::fs::remove_dir_all(&whole_dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killed_inside_an_epoch_resumes_bit_identically() {
    kill_and_resume("inside", 5, 33, 30);
}

#[test]
fn killed_at_an_epoch_boundary_resumes_bit_identically() {
    kill_and_resume("boundary", 0, 43, 42);
}

#[test]
fn a_checkpoint_that_does_not_fit_is_refused() {
    let dir = tmp("misfit");
    run(&dir, 0, None, None);
    let last = dir.join("last.ckpt");
    // Another seed: refused, naming the file and both seeds.
    let r = recipe::Recipe {
        seed: 6,
        ..recipe()
    };
    let data = recipe::digits_splits(r.seed).unwrap();
    let opts = recipe::RunOptions {
        progress: Progress::Quiet,
        resume: Some(last.clone()),
        extra: Some(Box::new(AbortAt(None))),
        ..Default::default()
    };
    let e = recipe::train(&r, &data, opts).err().unwrap().to_string();
    assert!(
        e.contains("last.ckpt") && e.contains("seed 5") && e.contains("seed is 6"),
        "{e}"
    );
    // Other callbacks: refused.
    let opts = recipe::RunOptions {
        progress: Progress::Quiet,
        resume: Some(last.clone()),
        ..Default::default()
    };
    let e = recipe::train(&recipe(), &data, opts)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("callbacks"), "{e}");
    // A damaged file: refused.
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&last, &bytes).unwrap();
    let opts = recipe::RunOptions {
        progress: Progress::Quiet,
        dir: Some(dir.clone()),
        resume: Some(last),
        extra: Some(Box::new(AbortAt(None))),
        ..Default::default()
    };
    let e = recipe::train(&recipe(), &data, opts)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("last.ckpt"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
