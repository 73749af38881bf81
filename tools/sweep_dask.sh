#!/usr/bin/env bash
# make sweep-dask: start a Dask cluster the way one starts it on real machines (the `dask`
# command line: one scheduler, two workers, here all on 127.0.0.1), run notebook 05's
# λ × T sweep on it with `python -m kdlib.runs --scheduler`, plot the summary, and stop
# the cluster. On a real cluster: start `dask scheduler` on one machine and
# `dask worker tcp://HOST:8786` on the others (or let dask-jobqueue / dask-kubernetes do
# it), then run only the `python -m kdlib.runs ... --scheduler tcp://HOST:8786` line.
set -euo pipefail
BIN=${BIN:-.venv/bin}
PORT=${DASK_PORT:-8786}
OUT=${OUT:-runs/lam_T_dask}
LOGS=$(mktemp -d -t kdlab-dask-XXXXXX)
pids=()
stop() { for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done; }
trap stop EXIT
setsid "$BIN/dask" scheduler --host 127.0.0.1 --port "$PORT" --no-dashboard >"$LOGS/scheduler.log" 2>&1 &
pids+=($!)
for i in 1 2; do
	setsid "$BIN/dask" worker "tcp://127.0.0.1:$PORT" --host 127.0.0.1 --nworkers 1 --nthreads 1 \
		--no-dashboard >"$LOGS/worker$i.log" 2>&1 &
	pids+=($!)
done
echo "Dask scheduler tcp://127.0.0.1:$PORT with 2 workers (logs: $LOGS)"
"$BIN/python" -m kdlib.runs notebooks/05_lambda_tuning.ipynb --grid lam=0.1,0.5,0.9 --grid T=2,4 \
	--param quick=true --scheduler "tcp://127.0.0.1:$PORT" --out "$OUT"
"$BIN/python" -m kdlib.runs --plot "$OUT/summary.csv" --x lam --y val_acc --hue T --png "$OUT/summary.png"
