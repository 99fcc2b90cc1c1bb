#!/usr/bin/env bash
# GPU check on a CUDA machine that has torch/torchvision but no Java or TorchServe:
# the gpu-marked tests (each precision vs CPU fp32) and the raw pipeline's speed on the GPU
# and, where the CPU has AMX, bf16 vs fp32 on the CPU. Wheels for the missing pure-Python
# packages travel in .whl/ (see README, "GPU").
set -uo pipefail
OUT=${OUT:-reports}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
  grep -m1 'model name' /proc/cpuinfo; nproc
  grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E 'amx|avx512_bf16' | tr '\n' ' '; echo
} 2>&1 | tee "$OUT/gpu_env.txt"
python3 -m pytest -q -o addopts="" -p no:cacheprovider -m gpu tests/handler/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.txt"
# The benchmarks' own modules (lookalike bench NAME): the CLI would import the search side too.
bench() { python3 -c 'import sys; from importlib import import_module; sys.exit(import_module(sys.argv[1]).main(sys.argv[2:]))' "$@"; }
bench lookalike.bench.embed --device cuda --no-served --batch-sizes 1,8,32 --seconds 4 --repeats 3 \
  --out "$OUT/bench_gpu.json" 2>&1 | grep -v WARN | tee "$OUT/bench_gpu.txt"
bench lookalike.bench.embed --device cpu --no-served --batch-sizes 8 --seconds 4 --repeats 3 \
  --out "$OUT/bench_cpu16.json" 2>&1 | grep -v WARN | tee "$OUT/bench_cpu16.txt"
# Issue 5: the quality bound with real bf16 kernels (AMX on that CPU), then every lever in-process.
python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/handler/test_fast_path.py 2>&1 | tee "$OUT/fast_path_tests.txt"
for device in cpu cuda; do
  bench lookalike.bench.levers --device "$device" --seconds 8 --repeats 3 \
    --out "$OUT/levers_$device.json" 2>&1 | grep -v WARN | tee "$OUT/levers_$device.txt"
done
