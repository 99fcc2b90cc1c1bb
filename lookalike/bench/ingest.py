"""Ingest throughput against what TorchServe alone sustains, measured side by side in one run.

TorchServe alone: `--concurrency` HTTP clients posting the same photos back to back.
Ingest: the real pipeline (read, hash, skip-known check, embed with the same concurrency,
bulk-write into a fresh embedded index, progress bookkeeping). Each repeat alternates the
two; the table shows medians and ingest/TorchServe. Writes JSON.

    lookalike bench ingest --repeats 3
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from lookalike import bench, stack
from lookalike.bench.embed import bench_served
from lookalike.index.embedded import EmbeddedIndex
from lookalike.ingest.pipeline import Ingestor
from lookalike.ingest.sources import from_folder
from lookalike.photos import all_photos
from lookalike.serving.client import ModelClient
from lookalike.settings import REPORTS_DIR, Settings


def unique_copies(photos: dict[str, bytes], copies: int, folder: Path) -> int:
    """Write each photo `copies` times with distinct trailing bytes (ignored by decoders, new sha256)."""
    n = 0
    for c in range(copies):
        for name, data in photos.items():
            (folder / f"{name}-{c}.jpg").write_bytes(data + b"\0" + str(c).encode())
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--model", default="resnet50", help="backbone (resnet50 runs with random weights)")
    parser.add_argument("--copies", type=int, default=3, help="copies of the ~51 photos per ingest run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_ingest.json")
    args = parser.parse_args(argv)

    photos = all_photos()
    images = list(photos.values())
    runs = []
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        store = tmp / "store"
        stack.ensure_archive(args.model, store, name="bench", random_weights=args.model == "resnet50")
        with stack.torchserve(["bench"], store, tmp / "ts") as server:
            info = ModelClient(server.inference_url, "bench").info()
            for repeat in range(args.repeats):
                folder = tmp / f"photos-{repeat}"
                folder.mkdir()
                n = unique_copies(photos, args.copies, folder)
                items = list(from_folder(folder))
                settings = Settings(ts_url=server.inference_url, model="bench", data_dir=tmp / f"index-{repeat}")
                index = EmbeddedIndex(settings.data_dir, "bench", info.model, info.dimension)
                ingestor = Ingestor(settings, index, info, concurrency=args.concurrency)
                started = time.perf_counter()
                report = ingestor.run(items, n, progress=False)
                ingest_rate = report.indexed / (time.perf_counter() - started)
                index.close()
                alone = bench_served(
                    server.inference_url, "bench", images, args.concurrency, seconds=n / max(ingest_rate, 0.1), warmup=2
                )
                row = {"repeat": repeat, "images": n, "ingest_images_per_s": ingest_rate,
                       "torchserve_images_per_s": alone["images_per_s"],
                       "ratio": ingest_rate / alone["images_per_s"], "failed": report.failed}  # fmt: skip
                runs.append(row)
                print(f"  run {repeat + 1}/{args.repeats}: ingest {ingest_rate:.1f} img/s, TorchServe alone "
                      f"{alone['images_per_s']:.1f} img/s, ratio {row['ratio']:.2f}", flush=True)  # fmt: skip
    summary = {key: statistics.median(row[key] for row in runs)
               for key in ("ingest_images_per_s", "torchserve_images_per_s", "ratio")}  # fmt: skip
    print(f"\nmedians over {len(runs)} runs ({args.model}, concurrency {args.concurrency}):")
    print(f"  ingest {summary['ingest_images_per_s']:.1f} img/s, TorchServe alone "
          f"{summary['torchserve_images_per_s']:.1f} img/s, ingest/TorchServe {summary['ratio']:.2f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "concurrency": args.concurrency, "summary": summary,
                                    "runs": runs}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
