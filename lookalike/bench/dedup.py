"""Verified de-duplication's cost at scale, in one run: time for N images (default 10,000), the
parts it is made of, and what that makes at a million.

The images: seeded variants of the ~51 bundled photos (a 40-100 % crop at a random place, resized
to a long side of 400-1024 px, mirrored half the time, brightness and colour jittered, JPEG 70-92),
written as files and ingested by the real ingest into an embedded index, with EfficientNet-Lite0
served by TorchServe. Each photo has ~200 variants, so nearly every image has `--neighbours`
candidates above the cosine threshold and many are verified copies: the dense case, an upper
bound on the pairs per image a catalogue pays (a pair that matches costs more than one that does
not). Three runs of `dedup.find_verified` on `--workers` threads: cold (every image's features made
from its file, as on a first run after `lookalike ingest`), warm (features stored), and warm
without the visual-words candidates (`lookalike dedup --no-words`), for their share.

    lookalike bench dedup                      # 10,000 images: ~30 min on 2 cores
    lookalike bench dedup --images 1000        # a quick look
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from lookalike import bench, dedup, stack
from lookalike.ingest.sources import Item
from lookalike.photos import all_photos
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings
from lookalike.verify import extract
from lookalike.verify.store import FeatureStore, SqliteFeatures
from lookalike.verify.verdict import verify

RUNS = ("cold", "warm", "words off")


def variant(data: bytes, rng: np.random.Generator) -> bytes:
    """Another picture made from a photo: cropped, resized, maybe mirrored, jittered, re-encoded."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    scale = np.sqrt(rng.uniform(0.4, 1.0))
    w, h = int(img.width * scale), int(img.height * scale)
    left, top = int(rng.integers(0, img.width - w + 1)), int(rng.integers(0, img.height - h + 1))
    img = img.crop((left, top, left + w, top + h))
    side = int(rng.integers(400, 1025))
    ratio = side / max(img.size)
    img = img.resize((max(16, int(img.width * ratio)), max(16, int(img.height * ratio))), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    img = ImageEnhance.Brightness(ImageEnhance.Color(img).enhance(rng.uniform(0.8, 1.2))).enhance(
        rng.uniform(0.85, 1.15)
    )
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(70, 93)))
    return buffer.getvalue()


def single_core_pair_ms(folder: Path, pairs: int = 200) -> float:
    """Median ms of one verification on one core, over pairs of the run's own images (features in hand)."""
    files = sorted(folder.glob("*.jpg"))[: 2 * pairs]
    made = [extract(path.read_bytes()) for path in files]
    ms = []
    for a, b in zip(made[::2], made[1::2], strict=False):
        started = time.perf_counter()
        verify(a, b, cosine=0.7)
        ms.append(1000 * (time.perf_counter() - started))
    return statistics.median(ms)


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=dedup.CANDIDATE_THRESHOLD)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_dedup.json")
    args = parser.parse_args(argv)
    stack.ensure_archive(DEFAULT_MODEL)
    photos = list(all_photos().values())
    report: dict = {"images": args.images, "neighbours": args.neighbours, "threshold": args.threshold,
                    "workers": args.workers, "cores": os.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-dedup-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "images"
        folder.mkdir()
        started = time.perf_counter()
        for n in range(args.images):
            rng = np.random.default_rng(n)
            (folder / f"{n:07d}.jpg").write_bytes(variant(photos[n % len(photos)], rng))
        print(f"{args.images} images made in {time.perf_counter() - started:.0f} s", flush=True)
        with stack.torchserve([DEFAULT_MODEL], MODEL_STORE, tmp / "ts") as server:
            settings = Settings(ts_url=server.inference_url, data_dir=tmp / "index", home=tmp)
            started = time.perf_counter()
            done = stack.ingest(settings, [Item(source=str(path)) for path in sorted(folder.glob("*.jpg"))],
                                progress=True)  # fmt: skip
            report["ingest_s"] = time.perf_counter() - started
            print(f"ingested {done.indexed} in {report['ingest_s']:.0f} s", flush=True)
            connected, store = stack.connect(settings), FeatureStore.of(settings)
            assert isinstance(store, SqliteFeatures)  # the bench's index is the embedded one: its file is measured
            try:
                for run in RUNS:
                    stats: dict = {}
                    started = time.perf_counter()
                    groups, stacks = dedup.find_verified(connected.index, store, args.threshold, args.neighbours,
                                                         progress=True, workers=args.workers, stats=stats,
                                                         by_words=run != "words off")  # fmt: skip
                    seconds = time.perf_counter() - started
                    report[run] = {"seconds": seconds, "pairs": stats["pairs"], "groups": len(groups),
                                   "stacks": len(stacks)}  # fmt: skip
                    print(f"{run}: {seconds:.0f} s, {stats['pairs']} pairs judged, {len(groups)} groups", flush=True)
                stored = sum(path.stat().st_size for path in store.path.parent.glob(f"{store.path.name}*"))
                report["feature_bytes_per_image"] = stored / args.images
            finally:
                store.close()
                connected.close()
        report["pair_ms_one_core"] = single_core_pair_ms(folder)
    n, cold, warm, unworded = args.images, report["cold"], report["warm"], report["words off"]
    pairs_per_image = warm["pairs"] / n
    per_image = {run: 1000 * report[run]["seconds"] / n for run in RUNS}
    report["pairs_per_image"] = pairs_per_image
    report["ms_per_image"] = per_image
    report["extrapolated_1m_hours"] = {run: per_image[run] * 1e6 / 3.6e6 for run in per_image}
    print(f"\nVerified de-duplication, {n} images, {args.neighbours} neighbours at cosine >= {args.threshold}, "
          f"{args.workers} worker threads on {os.cpu_count()} cores:")  # fmt: skip
    print(f"{'run':<9} {'seconds':>8} {'ms/image':>9} {'pairs':>8} {'groups':>7} {'1M images':>10}")
    for run in RUNS:
        row = report[run]
        print(f"{run:<9} {row['seconds']:>8.0f} {per_image[run]:>9.1f} {row['pairs']:>8} {row['groups']:>7} "
              f"{report['extrapolated_1m_hours'][run]:>9.1f}h")  # fmt: skip
    print(f"pairs judged per image {pairs_per_image:.1f}; one verification on one core "
          f"{report['pair_ms_one_core']:.1f} ms; "
          f"features stored {report['feature_bytes_per_image'] / 1024:.0f} KB per image; "
          f"cold - warm = making features: {(cold['seconds'] - warm['seconds']) * 1000 / n:.1f} ms per image "
          f"on {args.workers} threads; visual words: {(warm['seconds'] - unworded['seconds']) * 1000 / n:.1f} "
          f"ms per image, {warm['pairs'] - unworded['pairs']} pairs more")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.out}")
    return 0
