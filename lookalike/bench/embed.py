"""Embedding throughput: the raw in-process pipeline vs the same model served by TorchServe.

For each precision the hardware supports and each batch size, one run measures
  raw:    decode + preprocess + model in this process, batch after batch (handler code, no HTTP)
  served: the same handler in TorchServe (batchSize = b), 2*b concurrent HTTP clients
and reports images/s, p50/p95 latency and served/raw. Runs repeat (--repeats) and the
table shows medians. Prints a table and writes JSON (default reports/bench_embed.json).

    lookalike bench embed --seconds 20 --repeats 3
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lookalike_handler.embedder import Embedder
from lookalike_handler.precision import cpu_has_bf16
from lookalike_handler.settings import HandlerSettings

from lookalike import bench
from lookalike.errors import ModelServerError
from lookalike.photos import all_photos
from lookalike.ports import free_ports
from lookalike.serving import archive
from lookalike.serving.client import ModelClient
from lookalike.serving.torchserve import PORT_KEYS, TorchServe
from lookalike.settings import REPORTS_DIR


def percentiles(latencies: list[float]) -> tuple[float, float]:
    values = np.asarray(latencies) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def bench_raw(embedder: Embedder, images: list[bytes], batch: int, seconds: float) -> dict:
    """Batches of `batch` photos through the handler's decode + preprocess + model, for `seconds`;
    with where the time goes (ms per image in each stage) and, on CUDA, the GPU's utilisation."""
    for _ in range(3):  # warm-up: oneDNN builds its kernels for this shape on first use; CUDA its plans
        embedder.embed_bytes([images[0]] * batch)
    latencies, done, i = [], 0, 0
    stages = {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    with GpuUtilisation(embedder.device) as utilisation:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            chunk = [images[(i + k) % len(images)] for k in range(batch)]
            i += batch
            t0 = time.perf_counter()
            prepared, times = embedder.prepare_timed(chunk)
            t1 = time.perf_counter()
            embedder.embed_pixels(torch.cat([item for item in prepared if isinstance(item, torch.Tensor)]))
            latencies.append(time.perf_counter() - t0)
            stages["model"] += 1000 * (time.perf_counter() - t1)
            stages["decode"] += times.decode
            stages["preprocess"] += times.preprocess
            done += batch
        elapsed = time.perf_counter() - started
    p50, p95 = percentiles(latencies)
    return {"images_per_s": done / elapsed, "p50_ms": p50, "p95_ms": p95, "images": done,
            "ms_per_image": {stage: round(ms / done, 3) for stage, ms in stages.items()},
            "gpu_utilisation": utilisation.mean}  # fmt: skip


class GpuUtilisation:
    """The GPU's mean utilisation (%) while the block runs, sampled from nvidia-smi every 0.2 s;
    None on a CPU or without nvidia-smi."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mean: float | None = None
        self.samples: list[int] = []
        self.stop = threading.Event()

    def __enter__(self) -> GpuUtilisation:
        if self.device.type == "cuda" and shutil.which("nvidia-smi"):
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()
        return self

    def sample(self) -> None:
        index = str(self.device.index or 0)
        while not self.stop.wait(0.2):
            done = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                   "-i", index], capture_output=True, text=True)  # fmt: skip
            if done.returncode == 0 and done.stdout.strip().isdigit():
                self.samples.append(int(done.stdout.strip()))

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if hasattr(self, "thread"):
            self.thread.join(5)
        self.mean = round(statistics.mean(self.samples), 1) if self.samples else None


def bench_served(
    ts_url: str, model: str, images: list[bytes], clients: int, seconds: float, warmup: float = 5.0
) -> dict:
    """`clients` threads POST photos back to back: `warmup` seconds unmeasured, then `seconds` measured."""
    if warmup > 0:
        bench_served(ts_url, model, images, clients, warmup, warmup=0)
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker(offset: int) -> None:
        client = ModelClient(ts_url, model, timeout=120.0, retries=0)
        n = offset
        while time.perf_counter() < stop_at:
            data = images[n % len(images)]
            n += clients
            t0 = time.perf_counter()
            try:
                client.embed_response(data)
                ok = True
            except ModelServerError:
                ok = False
            elapsed = time.perf_counter() - t0
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    failures[0] += 1
        client.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    p50, p95 = percentiles(latencies or [0.0])
    return {"images_per_s": len(latencies) / elapsed, "p50_ms": p50, "p95_ms": p95, "images": len(latencies),
            "failures": failures[0]}  # fmt: skip


def supported_precisions(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp32", "bf16", "fp16"]
    return ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--model", default="resnet50", help="backbone (resnet50 runs with random weights)")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated")
    parser.add_argument("--precisions", help="comma-separated; default: all the hardware supports")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per cell")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the table shows medians")
    parser.add_argument("--max-batch-delay", type=int, default=20, help="TorchServe maxBatchDelay (ms)")
    parser.add_argument("--workers", type=int, default=1, help="TorchServe workers (1: the same work as raw)")
    parser.add_argument("--no-served", action="store_true", help="raw pipeline only (e.g. on a GPU box without Java)")
    parser.add_argument("--device", default="cpu", help="raw pipeline device (cpu or cuda)")
    parser.add_argument("--decode-threads", type=int, default=0, help="handler decode_threads (0 = one per core)")
    parser.add_argument("--decode", choices=["exact", "draft", "auto"], default="exact", help="handler decode mode")
    parser.add_argument("--decode-on", choices=["auto", "cpu", "device"], default="auto",
                        help="where JPEGs are decoded: auto (on a CUDA device, in batches), cpu, device")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_embed.json")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    precisions = args.precisions.split(",") if args.precisions else supported_precisions(device)
    random_weights = args.model == "resnet50"
    weights_path = None if random_weights else str(archive.weights_mod.resolve(args.model))
    images = [data for data in all_photos().values()]
    print(f"{len(images)} real photos; {args.model}; device {device}; precisions {precisions}; "
          f"batch sizes {batch_sizes}; {args.seconds:.0f}s x {args.repeats} runs per cell", flush=True)  # fmt: skip

    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-") as tmp:
        store = Path(tmp) / "store"
        for precision in precisions:
            settings = HandlerSettings(
                backbone=args.model, precision=precision, weights="random" if random_weights else "file",
                decode_threads=args.decode_threads, decode=args.decode, decode_on=args.decode_on,
            )  # fmt: skip
            embedder = Embedder.load(settings, weights_path, device)
            server = None
            if not args.no_served:
                models = {}
                for b in batch_sizes:
                    name = f"b{b}-{precision}"
                    archive.build(
                        args.model, store, name=name, random_weights=random_weights,
                        overrides={"batchSize": b, "maxBatchDelay": args.max_batch_delay,
                                   "minWorkers": args.workers, "maxWorkers": args.workers},
                        handler_overrides={"precision": precision, "decode_threads": args.decode_threads,
                                           "decode": args.decode, "decode_on": args.decode_on},
                    )  # fmt: skip
                    models[name] = f"{name}.mar"
                server = TorchServe(models, store, Path(tmp) / f"run-{precision}", free_ports(PORT_KEYS))
            try:
                for repeat in range(args.repeats):
                    for b in batch_sizes:
                        row: dict[str, Any] = {"precision": precision, "batch": b, "repeat": repeat}
                        row["raw"] = bench_raw(embedder, images, b, args.seconds)
                        if server is not None:
                            if server.pid() is None:
                                # Start after the raw run so the idle worker does not steal cycles.
                                server.start(timeout=300)
                            name = f"b{b}-{precision}"
                            row["served"] = bench_served(server.inference_url, name, images, 2 * b, args.seconds)
                            row["ratio"] = row["served"]["images_per_s"] / row["raw"]["images_per_s"]
                        runs.append(row)
                        print(f"  run {repeat + 1}/{args.repeats} {precision} b{b}: raw "
                              f"{row['raw']['images_per_s']:.1f} img/s"
                              + (f", served {row['served']['images_per_s']:.1f} img/s, ratio {row['ratio']:.2f}"
                                 if "served" in row else ""), flush=True)  # fmt: skip
            finally:
                if server is not None:
                    server.stop()

    summary = summarise(runs)
    print_table(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "device": str(device), "cpu_bf16": cpu_has_bf16(), "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "seconds": args.seconds, "repeats": args.repeats, "max_batch_delay_ms": args.max_batch_delay,
            "workers": args.workers,
            "decode_threads": args.decode_threads, "decode": args.decode, "decode_on": args.decode_on}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


def summarise(runs: list[dict]) -> list[dict]:
    cells: dict[tuple[str, int], list[dict]] = {}
    for row in runs:
        cells.setdefault((row["precision"], row["batch"]), []).append(row)
    summary = []
    for (precision, batch), rows in cells.items():
        cell = {"precision": precision, "batch": batch, "runs": len(rows)}
        for side in ("raw", "served"):
            if side in rows[0]:
                for key in ("images_per_s", "p50_ms", "p95_ms"):
                    cell[f"{side}_{key}"] = statistics.median(row[side][key] for row in rows)
        for stage in rows[0]["raw"]["ms_per_image"]:
            cell[f"raw_{stage}_ms_per_image"] = statistics.median(row["raw"]["ms_per_image"][stage] for row in rows)
        utilisations = [row["raw"]["gpu_utilisation"] for row in rows if row["raw"]["gpu_utilisation"] is not None]
        cell["raw_gpu_utilisation"] = statistics.median(utilisations) if utilisations else None
        if "ratio" in rows[0]:
            cell["ratio_median"] = statistics.median(row["ratio"] for row in rows)
            cell["served_failures"] = sum(row["served"]["failures"] for row in rows)
        summary.append(cell)
    return summary


def print_table(summary: list[dict]) -> None:
    columns = ("precision", "batch", "raw img/s", "raw p50/p95 ms", "ms/img decode/prep/model", "GPU %",
               "served img/s", "served p50/p95 ms", "served/raw")  # fmt: skip
    rows = []
    for cell in summary:
        split = "/".join(f"{cell[f'raw_{stage}_ms_per_image']:.2f}" for stage in ("decode", "preprocess", "model"))
        gpu = "-" if cell["raw_gpu_utilisation"] is None else f"{cell['raw_gpu_utilisation']:.0f}"
        row = [cell["precision"], str(cell["batch"]), f"{cell['raw_images_per_s']:.1f}",
               f"{cell['raw_p50_ms']:.0f}/{cell['raw_p95_ms']:.0f}", split, gpu]  # fmt: skip
        if "ratio_median" in cell:
            row += [f"{cell['served_images_per_s']:.1f}", f"{cell['served_p50_ms']:.0f}/{cell['served_p95_ms']:.0f}",
                    f"{cell['ratio_median']:.2f}"]  # fmt: skip
        else:
            row += ["-", "-", "-"]
        rows.append(row)
    widths = [max(len(columns[i]), *(len(row[i]) for row in rows)) for i in range(len(columns))]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    print("\nmedians over runs\n" + line.format(*columns) + "\n" + "-" * (sum(widths) + 2 * len(widths) - 2))
    for row in rows:
        print(line.format(*row))
