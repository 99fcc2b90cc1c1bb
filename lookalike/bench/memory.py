"""Ingest memory: peak RSS of `lookalike ingest` for a small and a large run of multi-megabyte photos.

Each run is the real command (`lookalike ingest --manifest`) in a process of its own, reading a URL
manifest from a local image server (every photo a ~4 MB 12-MP JPEG with distinct trailing bytes, so
each has its own SHA-256) into a fresh embedded index. Its peak resident memory comes from the
kernel (wait4's ru_maxrss). Then the large run is repeated with the ids in the manifest: a resumed
run, which must download nothing.

The model server is a stand-in unless --ts-url names one: it answers every image with a vector of
its bytes' hash in our wire format, without decoding. What is measured is the ingest process, which
does the same work either way; real TorchServe would take hours to decode 10,000 12-MP photos on
two cores (--ts-url http://127.0.0.1:8080 --model NAME measures against it).

    lookalike bench memory --sizes 100,10000
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from lookalike_handler.wire import encode_vector
from PIL import Image

from lookalike import bench
from lookalike.photos import subject_photos
from lookalike.settings import REPORTS_DIR

STANDIN_MODEL, STANDIN_DIMENSION = "memory-standin", 1280


def big_photo(side: tuple[int, int] = (4032, 3024)) -> bytes:
    """A real photo upscaled to a phone camera's 12 MP, as a high-quality JPEG (~4 MB)."""
    img = Image.open(io.BytesIO(subject_photos()["astronaut"])).convert("RGB").resize(side, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).integers(0, 24, (side[1], side[0], 3), dtype=np.uint8)  # keeps it from compressing
    img = Image.fromarray(np.asarray(img, dtype=np.uint8) // 2 + noise)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


class Servers:
    """The image server (GET /photo/<n>.jpg) and the stand-in model server, on loopback ports."""

    def __init__(self, photo: bytes) -> None:
        self.photo, self.downloads = photo, 0
        self.lock = threading.Lock()
        self.images = ThreadingHTTPServer(("127.0.0.1", 0), self._images())
        self.model = ThreadingHTTPServer(("127.0.0.1", 0), self._model())
        for server in (self.images, self.model):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def images_url(self) -> str:
        return f"http://127.0.0.1:{self.images.server_port}"

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{self.model.server_port}"

    def _images(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = outer.photo + b"\0" + self.path.encode()  # trailing bytes: ignored by decoders
                with outer.lock:
                    outer.downloads += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _model(self) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # /ping
                self._send(b'{"status":"Healthy"}')

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seed = int.from_bytes(hashlib.sha256(body).digest()[:8], "little")
                vector = np.random.default_rng(seed).standard_normal(STANDIN_DIMENSION).astype(np.float32)
                self._send(encode_vector(vector / np.linalg.norm(vector), STANDIN_MODEL))

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def close(self) -> None:
        for server in (self.images, self.model):
            server.shutdown()
            server.server_close()


def manifest(path: Path, images_url: str, n: int, ids: bool) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "url", "category"] if ids else ["url", "category"])
        for i in range(n):
            url = f"{images_url}/photo/{i}.jpg"
            writer.writerow([f"photo-{i}", url, "bench"] if ids else [url, "bench"])
    return path


def ingest(manifest_file: Path, data_dir: Path, ts_url: str, model: str) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, its summary line) of one `lookalike ingest` process."""
    cmd = [sys.executable, "-m", "lookalike", "ingest", "--manifest", str(manifest_file), "--no-progress",
           "--ts-url", ts_url, "--model", model, "--data-dir", str(data_dir),
           "--errors", str(data_dir / "errors.csv")]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"ingest failed ({process.returncode}):\n{output}")
    summary = next((line for line in output.splitlines() if line.startswith("indexed ")), output.strip())
    return usage.ru_maxrss / 1024, seconds, summary


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--sizes", default="100,10000", help="photos per run, small first (100,10000)")
    parser.add_argument("--ts-url", help="a running model server instead of the stand-in")
    parser.add_argument("--model", default=STANDIN_MODEL, help="its model name (with --ts-url)")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_memory.json")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    photo = big_photo()
    servers = Servers(photo)
    ts_url = args.ts_url or servers.model_url
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lookalike-bench-memory-") as tmp_name:
            tmp = Path(tmp_name)
            for n in sizes:
                for ids in (False, True):
                    before = servers.downloads
                    listed = manifest(tmp / f"manifest-{n}-{ids}.csv", servers.images_url, n, ids)
                    rss, seconds, summary = ingest(listed, tmp / f"index-{n}-{ids}", ts_url, args.model)
                    row = {"images": n, "ids_given": ids, "peak_rss_mb": round(rss, 1), "seconds": round(seconds, 1),
                           "images_per_s": round(n / seconds, 1), "downloads": servers.downloads - before,
                           "summary": summary}  # fmt: skip
                    rows.append(row)
                    print(f"  {n} images{' (ids given)' if ids else ''}: peak RSS {rss:.0f} MB, {seconds:.0f} s, "
                          f"{row['downloads']} downloads; {summary}", flush=True)  # fmt: skip
                    if ids:  # the same manifest again: a resumed run
                        before = servers.downloads
                        rss, seconds, summary = ingest(listed, tmp / f"index-{n}-{ids}", ts_url, args.model)
                        rows.append({"images": n, "ids_given": ids, "resumed": True, "peak_rss_mb": round(rss, 1),
                                     "seconds": round(seconds, 1), "downloads": servers.downloads - before,
                                     "summary": summary})  # fmt: skip
                        print(f"  {n} images, resumed: {servers.downloads - before} downloads, {seconds:.1f} s; "
                              f"{summary}", flush=True)  # fmt: skip
    finally:
        servers.close()
    print(f"\nIngest memory ({len(photo) / 1e6:.1f} MB photos over HTTP; model server: "
          f"{args.ts_url or 'stand-in (no decoding)'})")  # fmt: skip
    print(f"{'images':>8} {'ids':>5} {'resumed':>8} {'peak RSS MB':>12} {'img/s':>7} {'downloads':>10}")
    for row in rows:
        print(f"{row['images']:>8} {'yes' if row['ids_given'] else 'no':>5} {'yes' if row.get('resumed') else 'no':>8} "
              f"{row['peak_rss_mb']:>12.0f} {row.get('images_per_s', 0):>7.1f} {row['downloads']:>10}")  # fmt: skip
    peaks = [float(row["peak_rss_mb"]) for row in rows if not row.get("resumed")]
    growth = max(peaks) - min(peaks)
    print(f"peak RSS spread over sizes {args.sizes}: {growth:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"photo_bytes": len(photo), "model_server": args.ts_url or "stand-in",
                                    "rss_spread_mb": growth, "runs": rows}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
