"""A stand-in for TorchServe in the fast test tier: our wire format, deterministic vectors, in seconds.

It is NOT the model server. It answers `POST /predictions/<name>` and `GET /ping` the way our
handler inside TorchServe does (same JSON, same per-image 4xx statuses and reasons, because it
decodes with the handler's own `decode_image`), and a wrong bearer key the way TorchServe does
(400 InvalidKeyException). The vector is a fixed random projection of a 16x16 colour thumbnail,
mean-centred and L2-normalised: the same image gives the same vector, a re-encoded or slightly
edited copy a close one, unrelated photos distant ones. It proves plumbing (API, ingest, search,
dedup), never relevance or speed: those run against real TorchServe (tests marked `slow`).
With `X-Lookalike-Regions` it adds region vectors of the crops the handler's own `crops` cuts.
"""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from lookalike_handler.decode import DEFAULT_LIMITS, decode_image
from lookalike_handler.errors import ImageError
from lookalike_handler.regions import boxes, crops
from lookalike_handler.wire import encode_error, encode_vector
from PIL import Image

# served name -> (model id, dimension), as the archives of the real fixtures record them
MODELS = {"efficientnet_lite0": ("efficientnet_lite0", 1280), "resnet50-random": ("resnet50", 2048)}
THUMB = 16


def standin_vector(data: bytes, dimension: int) -> np.ndarray:
    """Image bytes -> float32 L2-normalised `[dimension]`; raises ImageError as the handler does."""
    return image_vector(decode_image(data, DEFAULT_LIMITS), dimension)


def image_vector(img: Image.Image, dimension: int) -> np.ndarray:
    """A decoded image (or region crop) -> its stand-in vector."""
    img = img.resize((THUMB, THUMB), Image.Resampling.BILINEAR)
    pixels = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
    pixels -= pixels.mean()
    projection = np.random.default_rng(dimension).standard_normal((dimension, pixels.size), dtype=np.float32)
    vector = projection @ pixels
    return (vector / (np.linalg.norm(vector) or 1.0)).astype(np.float32)


class StandInModelServer:
    """`with StandInModelServer() as ts:` -> ts.inference_url; `token=` makes it require a bearer key."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.requests = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.inference_url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StandInModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if outer.token and self.headers.get("Authorization") != f"Bearer {outer.token}":
                    self._send(400, b'{"code":400,"type":"InvalidKeyException","message":"Token is not valid"}')
                    return False
                return True

            def do_GET(self) -> None:
                if self._authorised():
                    self._send(200, b'{"status":"Healthy"}') if self.path == "/ping" else self._send(404, b"{}")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self._authorised():
                    return
                name = self.path.removeprefix("/predictions/")
                if name not in MODELS:
                    self._send(404, b'{"code":404,"type":"ModelNotFoundException","message":"Model not found"}')
                    return
                model, dimension = MODELS[name]
                outer.requests += 1
                scheme = self.headers.get("X-Lookalike-Regions") or "none"
                try:
                    img = decode_image(body, DEFAULT_LIMITS)
                    regions = [(box, image_vector(crop, dimension))
                               for box, crop in zip(boxes(scheme), crops(img, scheme), strict=True)]  # fmt: skip
                    answer = encode_vector(image_vector(img, dimension), model, regions=regions if regions else None,
                                           scheme=scheme, precision="fp32", archive=f"{name}/standin")  # fmt: skip
                    self._send(200, answer)
                except ImageError as exc:
                    self._send(exc.status, encode_error(exc.status, exc.reason))

        return Handler


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
