#!/usr/bin/env python3
"""What TensorBoard logging costs per step, on train_fashion_mnist: the same run without
logging, with scalars only (every 10 steps), and with histograms of weights, gradients and
activations every N steps, interleaved, several rounds.

    cargo build --release --example train_fashion_mnist
    python3 scripts/bench_tensorboard.py [--rounds 5] [--epochs 3] [--threads 2]

The cost is in `wall_s` (the whole `fit`: training, validation, checkpoints and callbacks;
the examples' `train_s_per_epoch` counts the training steps alone and leaves callbacks out).
Logging does not change the run, so the difference of medians over the steps taken is the
cost per step. Prints one JSON line per run and a table to standard error.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--every", default="100,10", help="histogram intervals to measure")
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
a = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
exe = os.path.join(root, "target", "release", "examples", "train_fashion_mnist")
work = tempfile.mkdtemp(prefix="bench-tensorboard-")

configs = [("none", [])]
configs.append(("scalars", ["--tensorboard", f"{work}/tb", "--histograms-every", "0"]))
for n in a.every.split(","):
    configs.append((f"histograms/{n}", ["--tensorboard", f"{work}/tb", "--histograms-every", n]))

cpus = ",".join(str(i) for i in range(a.threads))
walls = {name: [] for name, _ in configs}
steps = None
try:
    for r in range(a.rounds):
        for name, extra in configs:
            shutil.rmtree(f"{work}/tb", ignore_errors=True)
            cmd = ["taskset", "-c", cpus, exe, "--quiet", "--json", "--epochs", str(a.epochs),
                   "--threads", str(a.threads), "--data", a.data, "--results", f"{work}/results"] + extra
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            v = json.loads(out.strip().splitlines()[-1])
            steps = v["steps_per_epoch"] * v["epochs"]
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{work}/tb") for f in fs)
            walls[name].append(v["wall_s"])
            print(json.dumps({"config": name, "round": r, "wall_s": v["wall_s"], "steps": steps,
                              "event_bytes": size}), flush=True)
finally:
    shutil.rmtree(work, ignore_errors=True)

# Medians, and minimums (the least disturbed run of each: the machine is shared).
print(f"{'config':<16}{'median wall_s':>14}{'per step':>12}{'overhead':>10}{'min wall_s':>12}{'per step':>12}",
      file=sys.stderr)
base, base_min = statistics.median(walls["none"]), min(walls["none"])
for name, _ in configs:
    m, lo = statistics.median(walls[name]), min(walls[name])
    print(f"{name:<16}{m:>14.3f}{1e6 * (m - base) / steps:>10.1f}us{100 * (m - base) / base:>9.2f}%"
          f"{lo:>12.3f}{1e6 * (lo - base_min) / steps:>10.1f}us", file=sys.stderr)
