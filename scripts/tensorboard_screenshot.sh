#!/usr/bin/env bash
# Seen as a person would: trains the digits MLP three times (seeds 0 and 1, and seed 0 with
# augmentation) logging to TensorBoard, starts TensorBoard on 127.0.0.1, and takes headless
# Chromium screenshots of its scalars, histograms, images, text and HParams dashboards.
#
#   scripts/tensorboard_screenshot.sh [OUT]      (default: results/tensorboard_screenshots)
#
# Needs Debian's `chromium` package and a Python with `tensorboard`:
# TAPEGRAD_TENSORBOARD_PYTHON, or the virtual environment .ci/run makes (made here if
# missing, from PyPI). Everything stays on the loopback interface; the server is stopped
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-results/tensorboard_screenshots}
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "needs Chromium at $chromium: apt-get install chromium (or set CHROMIUM)" >&2
    exit 1
fi
venv="${TMPDIR:-/tmp}/tapegrad-tensorboard-venv"
py=${TAPEGRAD_TENSORBOARD_PYTHON:-$venv/bin/python}
if ! "$py" -c 'import tensorboard' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q tensorboard
    py=$venv/bin/python
fi

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Three runs of 15 epochs, histograms every 5 steps (21 steps an epoch).
cargo build -q --release --example train_digits
for args in "--seed 0" "--seed 1" "--seed 0 --augment"; do
    # shellcheck disable=SC2086
    target/release/examples/train_digits $args --epochs 15 --quiet \
        --tensorboard "$work/logs" --histograms-every 5 --results "$work/results"
done
ls "$work/logs"

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$py" -m tensorboard.main --logdir "$work/logs" --host 127.0.0.1 --port "$port" \
    >"$work/tensorboard.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/data/runs" | grep -q train_digits; then break; fi
    sleep 0.3
done
curl -sf "http://127.0.0.1:$port/data/runs" >/dev/null || {
    cat "$work/tensorboard.log" >&2
    exit 1
}

mkdir -p "$out"
shot() { # name, URL fragment
    "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/chromium" --hide-scrollbars --window-size=1600,1200 \
        --virtual-time-budget=20000 --screenshot="$out/$1.png" \
        "http://127.0.0.1:$port/?darkMode=false#$2" 2>>"$work/chromium.log"
    echo "$out/$1.png"
}
shot scalars "scalars&tagFilter=epoch%2F"
shot grad_norms "scalars&tagFilter=grad_norm%2F"
shot histograms "histograms&tagFilter=weights%2F"
shot activations "histograms&tagFilter=activations%2F"
shot images images
shot text text
shot hparams hparams
shot timeseries timeseries
