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
# Issue 37: the GPU path's own CPU-side tests, then JPEG bytes -> vectors on the GPU (nvJPEG in
# batches, resize/crop on the device), end to end in-process: images/s, p50/p95, GPU %, and where
# the time goes; ResNet50 (random weights: speed only) and Lite0, each GPU precision.
python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/handler/test_device_decode.py 2>&1 | tee "$OUT/device_decode_tests.txt"
for model in resnet50 efficientnet_lite0; do
  bench lookalike.bench.embed --model "$model" --device cuda --no-served --decode-on device --precisions bf16,fp16 \
    --batch-sizes 64,128,256 --seconds 6 --repeats 3 --out "$OUT/bench_gpu_decode_$model.json" 2>&1 | grep -v WARN \
    | tee "$OUT/bench_gpu_decode_$model.txt"
  bench lookalike.bench.embed --model "$model" --device cuda --no-served --decode-on cpu --precisions bf16 \
    --batch-sizes 128 --seconds 6 --repeats 3 --out "$OUT/bench_gpu_cpudecode_$model.json" 2>&1 | grep -v WARN \
    | tee "$OUT/bench_gpu_cpudecode_$model.txt"
done
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
