#!/usr/bin/env bash
# The GPU path proven in one short script (issue "The GPU path proven"; at most ~8 minutes on a GPU):
#
#   tools/gpu_check.sh OUT_DIR
#
# On a CUDA machine:
#   1. bench/run.py --gpu --quick    a VGG-16 training step (AMP, channels_last): images/s, TFLOP/s vs matmul
#   2. bench/steps.py                each chapter's `gpu` work items timed for a few steps each, and each
#                                    chapter's runtime extrapolated from those step times (bench/estimate.py's data)
#   3. tools/nb.py smoke             every cell of every chapter at the gpu settings, each run capped (BNBOOK_SMOKE),
#                                    on the GPU, with the device check on
# Without CUDA it says so and runs the CPU fallback: step 1 as a brief CPU benchmark, step 3 on the CPU.
# Results: OUT_DIR/summary.json and OUT_DIR/summary.md, beside each step's own JSON, markdown and log.
# GPU_CHECK_NB="notebooks/01_bn_basics.ipynb ..." limits the smoke run to those chapters (tests use a toy one).
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: tools/gpu_check.sh OUT_DIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
cd "$ROOT"
# the offline CIFAR-10 copy, as the Makefile finds it (users get CIFAR-10 through torchvision's download)
if [ -z "${BNBOOK_DATA:-}" ] && [ -f "$ROOT/../shared/data/cifar10-jpg.tar.gz" ]; then
  export BNBOOK_DATA="$ROOT/../shared/data"
fi

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  DEVICE=cuda
  echo "CUDA found: $("$PY" -c 'import torch; print(torch.cuda.get_device_name())')"
else
  DEVICE=cpu
  echo "no CUDA device: running the CPU fallback (a brief CPU benchmark and the smoke run on the CPU)"
fi

declare -a NAMES RCS SECS
step() {  # step NAME TIMEOUT_S COMMAND...: run with a time limit, log to OUT/NAME.log, record rc and seconds
  local name="$1" limit="$2"
  shift 2
  echo "== $name (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  NAMES+=("$name")
  RCS+=("$rc")
  SECS+=("$((SECONDS - t0))")
  tail -n 25 "$OUT/$name.log"
  echo "== $name: exit $rc in $((SECONDS - t0)) s"
}

if [ "$DEVICE" = cuda ]; then
  step bench 60 "$PY" bench/run.py --gpu --quick --out "$OUT/bench.md" --json "$OUT/bench.json"
  step steps 120 "$PY" bench/steps.py --steps 5 --json "$OUT/steps.json" --md "$OUT/steps.md"
  SMOKE_LIMIT=300  # bench + steps + smoke: at most 8 minutes
else
  step bench 120 "$PY" bench/run.py --quick --out "$OUT/bench.md" --json "$OUT/bench.json"
  SMOKE_LIMIT=3600  # the whole book on 2 CPU cores: about an hour (see bnutils.profiles)
fi
# shellcheck disable=SC2086  # GPU_CHECK_NB is a list of notebooks
step smoke "$SMOKE_LIMIT" env SMOKE_OUT="$OUT/smoke" "$PY" tools/nb.py smoke ${GPU_CHECK_NB:-}

"$PY" - "$OUT" "$DEVICE" "${NAMES[*]}" "${RCS[*]}" "${SECS[*]}" <<'EOF'
import json, sys
from pathlib import Path
out, device, names, rcs, secs = Path(sys.argv[1]), sys.argv[2], *(a.split() for a in sys.argv[3:])
read = lambda f: json.loads((out / f).read_text()) if (out / f).is_file() else None
summary = {"device": device, "steps": [{"step": n, "exit": int(r), "seconds": int(s)} for n, r, s in zip(names, rcs, secs)],
           "bench": read("bench.json"), "extrapolated": read("steps.json"), "smoke": read("smoke/smoke.json")}
(out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
md = [f"# GPU check on {device}", "", "| step | exit | seconds |", "|---|---|---|"]
md += [f"| {s['step']} | {s['exit']} | {s['seconds']} |" for s in summary["steps"]]
if summary["smoke"]:
    md += ["", "## Smoke run (gpu settings, capped)", "", "| chapter | seconds | ran |", "|---|---|---|"]
    md += [f"| {c['notebook']} | {c['seconds']} | {'ok' if c['ok'] else 'FAILED'} |" for c in summary["smoke"]["chapters"]]
if summary["extrapolated"]:
    md += ["", "## Chapter runtimes extrapolated from measured step times", "", (out / "steps.md").read_text()]
if (out / "bench.md").is_file():
    md += ["", "## Benchmark", "", (out / "bench.md").read_text().split("\n", 2)[-1]]
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md[:4 + len(summary["steps"])]))
EOF
for rc in "${RCS[@]}"; do
  [ "$rc" = 0 ] || { echo "gpu_check: a step failed (see $OUT/*.log)"; exit 1; }
done
echo "gpu_check: all steps passed; results in $OUT/summary.md and $OUT/summary.json"
