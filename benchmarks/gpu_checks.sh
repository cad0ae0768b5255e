#!/usr/bin/env bash
# The GPU checks, in one run (about 5 minutes on one GPU): the CUDA tests, the networks' speed at
# the paper's recipe, the bundle's GPU profile (1600 px, batch 3, AMP) trained for a few epochs on a
# 40-image ideal phantom cohort at 0.1 mm, its inference + evaluation on the test split, and the
# multi-GPU config under torchrun (NCCL). Logs go to OUT_DIR (default ./gpu-checks).
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR]
#
# Needs the project installed (pip install -e ".[test]") and a CUDA device; nothing is downloaded.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-gpu-checks}")"
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_checks: no CUDA device')" || exit 2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log() { echo "### $(date +%T) $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
log "tests (CUDA-marked, and the profile the default picks)"
python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -3
python3 -m pytest -q -p no:cacheprovider tests/test_recipe.py 2>&1 | tail -2
log "training speed of the networks at 1600 px, batch 3, AMP (benchmarks/bench_training.py)"
python3 benchmarks/bench_training.py --devices cuda --threads 8 2>&1 | tee "$out/bench_training.log"
log "cohort: 40 ideal phantoms at 0.1 mm"
( time python3 -m monai_bac.cli phantom --out "$work/cohort" --n 40 --spacing 0.1 --physics ideal --workers 8 ) 2>&1 | tail -4
log "training, GPU profile, 4 epochs"
cp -r bundle "$work/b1"
( time python3 -m monai.bundle run training --config_file "$work/b1/configs/train.json" --bundle_root "$work/b1" \
    --datalist_file "$work/cohort/datalist.json" --num_epochs 4 ) > "$out/train.log" 2>&1
grep -vE "^\s*$" "$out/train.log" | tail -20
log "inference + evaluation on the test split"
( time python3 -m monai.bundle run --config_file "['$work/b1/configs/inference.json','$work/b1/configs/evaluate.json']" \
    --bundle_root "$work/b1" --input_path "$work/cohort/datalist.json" ) > "$out/evaluate.log" 2>&1
tail -8 "$out/evaluate.log"
log "torchrun, multi-GPU config (NCCL), 2 epochs"
cp -r bundle "$work/b2"
nproc="$(python3 -c 'import torch; print(torch.cuda.device_count())')"
( time torchrun --standalone --nproc_per_node="$nproc" -m monai.bundle run training \
    --config_file "['$work/b2/configs/train.json','$work/b2/configs/multi_gpu_train.json']" --bundle_root "$work/b2" \
    --datalist_file "$work/cohort/datalist.json" --num_epochs 2 ) > "$out/torchrun.log" 2>&1
grep -iE "nccl|training finished|real|error" "$out/torchrun.log" | tail -8
log done
