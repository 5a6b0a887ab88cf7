#!/usr/bin/env python3
"""Time per epoch, accuracy, process wall time and peak RSS of the training examples beside
the PyTorch and JAX versions of the same recipes, interleaved in one run.

    python3 scripts/bench_training.py --peers ../shared/peers/python \
        --torch-py PATH/TO/torch/python --jax-py PATH/TO/jax/python > training.jsonl

Build first: cargo build --release --example train_digits --example train_fashion_mnist.
Digits: seeds 0-4 on 1 thread (taskset -c 0); Fashion-MNIST: seeds 0-2 on 2 threads
(taskset -c 0,1), as the issue's goals are stated. Each line of the output is one run: the
program's own JSON line plus `process_s` (start to exit, as a user waits) and
`peak_rss_mb` (the kernel's count for the process). A summary goes to standard error.
"""
import argparse, json, os, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--peers", required=True, help="the folder of train_*_torch.py / train_*_jax.py")
ap.add_argument("--torch-py", default=os.environ.get("PEERS_TORCH_PY", "python3"))
ap.add_argument("--jax-py", default=os.environ.get("PEERS_JAX_PY", "python3"))
ap.add_argument("--digits-seeds", default="0,1,2,3,4")
ap.add_argument("--fmnist-seeds", default="0,1,2")
ap.add_argument("--fmnist-data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--skip", default="", help="comma list of peers to skip (tapegrad,torch,jax)")
a = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
digits = os.path.join(root, "data", "digits.csv.gz")
ex = os.path.join(root, "target", "release", "examples")
skip = set(filter(None, a.skip.split(",")))


def commands(workload, seed, threads):
    if workload == "train_digits":
        return {
            "tapegrad": [f"{ex}/train_digits", "--quiet", "--json", "--seed", str(seed), "--threads", str(threads),
                         "--results", f"/tmp/bench-train-digits-{seed}"],
            "torch": [a.torch_py, f"{a.peers}/train_digits_torch.py", digits, "--seed", str(seed), "--threads", str(threads)],
            "jax": [a.jax_py, f"{a.peers}/train_digits_jax.py", digits, "--seed", str(seed), "--threads", str(threads)],
        }
    return {
        "tapegrad": [f"{ex}/train_fashion_mnist", "--quiet", "--json", "--seed", str(seed), "--threads", str(threads),
                     "--data", a.fmnist_data, "--results", f"/tmp/bench-train-fmnist-{seed}"],
        "torch": [a.torch_py, f"{a.peers}/train_fmnist_torch.py", "--data", a.fmnist_data, "--seed", str(seed),
                  "--threads", str(threads)],
        "jax": [a.jax_py, f"{a.peers}/train_fmnist_jax.py", "--data", a.fmnist_data, "--seed", str(seed),
                "--threads", str(threads)],
    }


# Peak RSS of each child: RUSAGE_CHILDREN only grows, so each run goes through a wrapper
# that reports its own child's peak.
WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(r.returncode)")


def measured(peer, workload, seed, threads, cmd):
    cpus = "0" if threads == 1 else "0,1"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", WRAP, "taskset", "-c", cpus] + cmd, capture_output=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        print(f"{peer} {workload} seed {seed}: failed\n{p.stderr.decode()[-2000:]}", file=sys.stderr)
        return None
    rss = [l for l in p.stderr.decode().splitlines() if l.startswith("MAXRSS")][-1].split()[1]
    r = json.loads([l for l in p.stdout.decode().splitlines() if l.startswith("{")][-1])
    r.update(peer=peer, workload=workload, seed=seed, threads=threads, process_s=round(wall, 3),
             peak_rss_mb=round(int(rss) / 1024, 1))
    return r


results = []
for workload, seeds, threads in [("train_digits", a.digits_seeds, 1), ("train_fmnist", a.fmnist_seeds, 2)]:
    for seed in [int(s) for s in seeds.split(",") if s]:
        for peer, cmd in commands(workload, seed, threads).items():
            if peer in skip:
                continue
            r = measured(peer, workload, seed, threads, cmd)
            if r:
                print(json.dumps(r), flush=True)
                results.append(r)

for workload in ["train_digits", "train_fmnist"]:
    print(f"\n{workload}", file=sys.stderr)
    for peer in ["tapegrad", "torch", "jax"]:
        rs = [r for r in results if r["workload"] == workload and r["peer"] == peer]
        if not rs:
            continue
        acc = [100 * r["test_accuracy"] for r in rs]
        # wall_s / epochs: training and validation (and, for tapegrad, writing its
        # checkpoints), the one figure every script reports; train_s_per_epoch where given.
        wall = [r["wall_s"] / r["epochs"] for r in rs]
        train = [r["train_s_per_epoch"] for r in rs if "train_s_per_epoch" in r]
        train_txt = f"  train/epoch median {statistics.median(train) * 1e3:.2f} ms" if train else ""
        print(f"  {peer:9} acc {' / '.join(f'{x:.2f}' for x in acc)} (mean {statistics.mean(acc):.2f})"
              f"  wall/epoch median {statistics.median(wall) * 1e3:.2f} ms{train_txt}"
              f"  process median {statistics.median([r['process_s'] for r in rs]):.2f} s"
              f"  peak RSS median {statistics.median([r['peak_rss_mb'] for r in rs]):.0f} MB", file=sys.stderr)
