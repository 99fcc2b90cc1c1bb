"""Each speed lever of the embedding path against the plain fp32 eager path, side by side in one run.

The baseline is what the handler did before any lever: fp32, eager, contiguous (NCHW) tensors, one
decode thread, exact decoding, the whole batch in one forward pass. Levers, added one at a time,
then the default the hardware gets:
  channels_last (memory_format), parallel decoding (decode_threads), JPEG draft decoding (decode),
  the batch in slices (forward_rows; backbones with a CPU slice size, e.g. efficientnet_lite0),
  bf16 with BatchNorm folded and the stem in fp32 (precision; only where the CPU has AMX/AVX512-BF16
  or on CUDA). On a CPU, two more rows: the default settings at bf16 and at int8 (the archive's
  quantized trunk), so their ratio comes from one run.
Each cell runs the handler's own decode + preprocess + model on the bundled real photos:
  raw (default):  in this process, batch after batch;
  --served:       through TorchServe, one archive per cell, 2*batch concurrent HTTP clients; the
                  levers run one worker, the default rows (auto, bf16, int8) model-config.yaml's
                  workers (the cores split between them).
Repeats alternate the cells; the table shows medians and the median ratio to the baseline measured
in the same repeat. Prints a table and writes JSON (default reports/bench_levers[_served].json).

    lookalike bench levers --seconds 10 --repeats 3
    lookalike bench levers --served --seconds 20 --repeats 3
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch
from lookalike_handler.backbones import get_backbone
from lookalike_handler.embedder import Embedder, cpu_cores, thread_budget
from lookalike_handler.precision import cpu_has_bf16
from lookalike_handler.quantize import INT8_FILE
from lookalike_handler.settings import HandlerSettings

from lookalike import bench, stack
from lookalike.bench.embed import bench_raw, bench_served
from lookalike.photos import all_photos
from lookalike.serving import archive, int8
from lookalike.settings import REPORTS_DIR

BASELINE = "baseline: fp32 eager NCHW"
DEFAULT = "default (auto settings)"
BF16_DEFAULT = "bf16 default"
INT8_DEFAULT = "int8 default"  # the archive's int8 trunk (lookalike mar --precision int8)
DEFAULTS = (DEFAULT, BF16_DEFAULT, INT8_DEFAULT)
WHOLE_BATCH = 1 << 20  # forward_rows that never slices a batch


def cells(device: torch.device, model: str) -> dict[str, dict]:
    """Lever name -> handler settings; the first is the baseline, the last what `auto` picks here."""
    _, cores = thread_budget(HandlerSettings(), workers=1, cores=cpu_cores())  # what decode_threads 0 gives
    base = {"precision": "fp32", "memory_format": "contiguous", "decode_threads": 1, "decode": "exact",
            "forward_rows": WHOLE_BATCH}  # fmt: skip
    out = {
        BASELINE: base,
        "+ channels_last": {**base, "memory_format": "auto"},
        "+ parallel decode": {**base, "memory_format": "auto", "decode_threads": cores},
        "+ draft decode": {**base, "memory_format": "auto", "decode_threads": cores, "decode": "draft"},
    }
    if device.type == "cpu" and get_backbone(model).cpu_rows:
        out["+ forward slices"] = {**out["+ draft decode"], "forward_rows": 0}
    if device.type == "cuda" or cpu_has_bf16():
        out["bf16 alone"] = {**base, "precision": "bf16", "memory_format": "auto"}
    out[DEFAULT] = {"precision": "auto", "memory_format": "auto", "decode_threads": 0, "decode": "auto",
                    "forward_rows": 0}  # fmt: skip
    if device.type == "cpu":  # the same default settings at a named precision, read from this one run
        if cpu_has_bf16():
            out[BF16_DEFAULT] = {**out[DEFAULT], "precision": "bf16"}
        out[INT8_DEFAULT] = {**out[DEFAULT], "precision": "int8"}
    return out


def measure_raw(args, variants: dict[str, dict], images: list[bytes], device: torch.device, record) -> None:
    """One embedder per cell in this process (one worker: the default cell's worker count is not modelled)."""
    with tempfile.TemporaryDirectory(prefix="lookalike-levers-") as tmp:
        if any(cfg["precision"] == "int8" for cfg in variants.values()):
            int8.make(args.model, None, Path(tmp) / INT8_FILE)  # as the archive builder does
        embedders = {
            name: Embedder.load(
                HandlerSettings(backbone=args.model, weights="random", **cfg), None, device, model_dir=tmp
            )
            for name, cfg in variants.items()
        }
    for repeat in range(args.repeats):
        for name, embedder in embedders.items():
            record(repeat, name, bench_raw(embedder, images, args.batch, args.seconds)["images_per_s"])


def measure_served(args, variants: dict[str, dict], images: list[bytes], record) -> None:
    with tempfile.TemporaryDirectory(prefix="lookalike-levers-") as tmp:
        store = Path(tmp) / "store"
        models = {}
        for i, (name, cfg) in enumerate(variants.items()):
            # the default rows run model-config.yaml's workers; each lever alone runs one
            one_worker = {} if name in DEFAULTS else {"minWorkers": 1, "maxWorkers": 1}
            archive.build(
                args.model, store, name=f"lever{i}", random_weights=True,
                overrides={"batchSize": args.batch, "maxBatchDelay": 20, **one_worker}, handler_overrides=cfg,
            )  # fmt: skip
            models[f"lever{i}"] = f"lever{i}.mar"
        with stack.torchserve(models, store, Path(tmp) / "run", timeout=600) as server:
            for repeat in range(args.repeats):
                for i, name in enumerate(variants):
                    result = bench_served(server.inference_url, f"lever{i}", images, 2 * args.batch, args.seconds)
                    if result["failures"]:
                        raise SystemExit(f"{name}: {result['failures']} failed requests")
                    record(repeat, name, result["images_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--model", default="resnet50", help="backbone, run with seeded random weights")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="raw mode only: cpu or cuda")
    parser.add_argument("--served", action="store_true", help="measure through TorchServe (needs Java)")
    parser.add_argument("--cells", help="comma-separated rows to run (the baseline always runs), e.g. "
                        f"'{BF16_DEFAULT},{INT8_DEFAULT}'; default every row")  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    out = args.out or REPORTS_DIR / ("bench_levers_served.json" if args.served else "bench_levers.json")
    images = list(all_photos().values())
    variants = cells(device, args.model)
    if args.cells:
        wanted = {name.strip() for name in args.cells.split(",")}
        unknown = wanted - set(variants)
        if unknown:
            parser.error(f"no row {', '.join(sorted(unknown))} here; rows: {', '.join(variants)}")
        variants = {name: cfg for name, cfg in variants.items() if name == BASELINE or name in wanted}
    mode = "served by TorchServe" if args.served else f"in-process on {device}"
    print(f"{args.model}, batch {args.batch}, {mode}, cpu bf16: {cpu_has_bf16()}, {cpu_cores()} cores, "
          f"{len(images)} photos, {args.seconds:.0f}s x {args.repeats} per cell", flush=True)  # fmt: skip
    runs: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}

    def record(repeat: int, name: str, rate: float) -> None:
        runs[name].append(rate)
        ratios[name].append(rate / runs[BASELINE][repeat])
        print(f"  run {repeat + 1}: {name:<28} {rate:7.1f} img/s  x{ratios[name][-1]:.2f}", flush=True)

    if args.served:
        measure_served(args, variants, images, record)
    else:
        measure_raw(args, variants, images, device, record)
    print(f"\n{'lever':<28} {'img/s (median)':>15} {'x baseline (median)':>20}")
    for name in variants:
        print(f"{name:<28} {statistics.median(runs[name]):>15.1f} {statistics.median(ratios[name]):>20.2f}")
    summary = {}
    if BF16_DEFAULT in runs and INT8_DEFAULT in runs:  # the int8 target reads this ratio from one run
        paired = [a / b for a, b in zip(runs[INT8_DEFAULT], runs[BF16_DEFAULT], strict=True)]
        summary["int8_over_bf16_default"] = statistics.median(paired)
        print(f"{INT8_DEFAULT} / {BF16_DEFAULT}: x{summary['int8_over_bf16_default']:.2f} "
              f"(median of the {len(paired)} repeats' ratios)")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "mode": mode, "batch": args.batch, "cpu_bf16": cpu_has_bf16(),
            "cores": cpu_cores(), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "seconds": args.seconds, "repeats": args.repeats}  # fmt: skip
    out.write_text(json.dumps({"meta": meta, "cells": variants, "runs": runs, "ratios": ratios, **summary}, indent=2))
    print(f"JSON: {out}")
    return 0
