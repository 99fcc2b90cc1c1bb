"""Ingest throughput against what TorchServe alone sustains, measured side by side in one run.

TorchServe alone: `--concurrency` HTTP clients posting the same photos back to back.
Ingest: the real pipeline (read, hash, skip-known check, embed with the same concurrency,
bulk-write into a fresh embedded index, progress bookkeeping). Each repeat alternates the
two; the table shows medians and ingest/TorchServe. Writes JSON.

    .venv/bin/python loadtest/bench_ingest.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "loadtest"))

from bench_embed import bench_served  # noqa: E402

from lookalike import archive  # noqa: E402
from lookalike.client import EmbeddingClient  # noqa: E402
from lookalike.photos import all_photos  # noqa: E402
from lookalike.server import PORT_KEYS, TorchServe, free_port  # noqa: E402
from opensearch.embedded import EmbeddedIndex  # noqa: E402
from opensearch.embedding import probe  # noqa: E402
from opensearch.ingest import Ingestor  # noqa: E402
from opensearch.settings import SearchSettings  # noqa: E402
from opensearch.sources import from_folder  # noqa: E402


def unique_copies(photos: dict[str, bytes], copies: int, folder: Path) -> int:
    """Write each photo `copies` times with distinct trailing bytes (ignored by decoders, new sha256)."""
    n = 0
    for c in range(copies):
        for name, data in photos.items():
            (folder / f"{name}-{c}.jpg").write_bytes(data + b"\0" + str(c).encode())
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50", help="backbone (resnet50 runs with random weights)")
    parser.add_argument("--copies", type=int, default=3, help="copies of the ~51 photos per ingest run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench_ingest.json")
    args = parser.parse_args(argv)

    photos = all_photos()
    images = list(photos.values())
    runs = []
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-ingest-") as tmp:
        tmp = Path(tmp)
        store = tmp / "store"
        archive.build(args.model, store, name="bench", random_weights=args.model == "resnet50")
        server = TorchServe({"bench": "bench.mar"}, store, tmp / "ts", {k: free_port() for k in PORT_KEYS})
        server.start(timeout=300)
        try:
            info = probe(EmbeddingClient(server.inference_url, "bench"))
            for repeat in range(args.repeats):
                folder = tmp / f"photos-{repeat}"
                folder.mkdir()
                n = unique_copies(photos, args.copies, folder)
                items = list(from_folder(folder))
                settings = SearchSettings(ts_url=server.inference_url, model="bench", data_dir=tmp / f"index-{repeat}")
                index = EmbeddedIndex(settings.data_dir, "bench", info.model, info.dimension)
                ingestor = Ingestor(settings, index, info, lambda: EmbeddingClient(server.inference_url, "bench"),
                                    args.concurrency)  # fmt: skip
                started = time.perf_counter()
                report = ingestor.run(items, n, progress=False)
                ingest_rate = report.indexed / (time.perf_counter() - started)
                index.close()
                url = f"{server.inference_url}/predictions/bench"
                alone = bench_served(url, images, args.concurrency, seconds=n / max(ingest_rate, 0.1), warmup=2)
                row = {"repeat": repeat, "images": n, "ingest_images_per_s": ingest_rate,
                       "torchserve_images_per_s": alone["images_per_s"],
                       "ratio": ingest_rate / alone["images_per_s"], "failed": report.failed}  # fmt: skip
                runs.append(row)
                print(f"  run {repeat + 1}/{args.repeats}: ingest {ingest_rate:.1f} img/s, TorchServe alone "
                      f"{alone['images_per_s']:.1f} img/s, ratio {row['ratio']:.2f}", flush=True)  # fmt: skip
        finally:
            server.stop()
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


if __name__ == "__main__":
    sys.exit(main())
