"""Each speed lever of the embedding path against the plain fp32 path, in one run, in-process.

Levers: parallel decoding (decode_threads), JPEG draft decoding, bf16 autocast + channels_last
(only where the hardware supports bf16: AMX/AVX512-BF16 or CUDA). Every cell runs the handler's
own decode + preprocess + model on the bundled real photos; repeats alternate the cells and the
table shows medians and the ratio to the baseline measured in the same repeat.

    .venv/bin/python loadtest/bench_levers.py --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "loadtest")]

from bench_embed import bench_raw  # noqa: E402

from handler.embedder import Embedder  # noqa: E402
from handler.precision import cpu_has_bf16  # noqa: E402
from handler.settings import HandlerSettings  # noqa: E402
from lookalike.photos import all_photos  # noqa: E402


def cells(device: torch.device) -> dict[str, dict]:
    cores = min(8, os.cpu_count() or 1)
    out = {
        "baseline fp32": {"precision": "fp32", "decode_threads": 1},
        "+ parallel decode": {"precision": "fp32", "decode_threads": cores},
        "+ parallel + draft decode": {"precision": "fp32", "decode_threads": cores, "decode": "draft"},
    }
    if device.type == "cuda" or cpu_has_bf16():
        out["+ bf16 channels_last"] = {"precision": "bf16", "decode_threads": 1}
        out["all: bf16 + parallel + draft"] = {"precision": "bf16", "decode_threads": cores, "decode": "draft"}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench_levers.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    images = list(all_photos().values())
    variants = cells(device)
    embedders = {
        name: Embedder.load(HandlerSettings(backbone=args.model, weights="random", **cfg), None, device)
        for name, cfg in variants.items()
    }
    print(f"{args.model}, batch {args.batch}, {device}, cpu bf16: {cpu_has_bf16()}, {torch.get_num_threads()} torch "
          f"threads, {len(images)} photos", flush=True)  # fmt: skip
    runs: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        base = None
        for name, embedder in embedders.items():
            rate = bench_raw(embedder, images, args.batch, args.seconds)["images_per_s"]
            base = rate if base is None else base
            runs[name].append(rate)
            ratios[name].append(rate / base)
            print(f"  run {repeat + 1}: {name:<30} {rate:7.1f} img/s  x{rate / base:.2f}", flush=True)
    print(f"\n{'lever':<30} {'img/s (median)':>15} {'x baseline (median)':>20}")
    for name in variants:
        print(f"{name:<30} {statistics.median(runs[name]):>15.1f} {statistics.median(ratios[name]):>20.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "device": str(device), "batch": args.batch,
                                    "runs": runs, "ratios": ratios}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
