"""The TorchServe entry point: a thin `BaseHandler` subclass over the pure modules.

preprocess: N request dicts -> decoded, resized uint8 pixels (the whole image, then the regions its
            `regions` option asks for), and a per-request error for each bad one
inference:  uint8 `[M,3,S,S]` -> float32 `[M,D]` L2-normalised vectors, every request's rows in one batch
postprocess: N JSON answers; a bad request gets its own 4xx, its neighbours their vectors
"""

from __future__ import annotations

import logging
import os
import time

import torch
from lookalike_handler.batch import Batch
from lookalike_handler.decode import Limits
from lookalike_handler.embedder import Embedder, worker_device
from lookalike_handler.errors import BadPayload, ImageError
from lookalike_handler.payload import image_bytes, option
from lookalike_handler.regions import boxes
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.wire import ENCODINGS, encode_error, encode_vector
from ts.metrics.metric_type_enum import MetricTypes
from ts.torch_handler.base_handler import BaseHandler

logger = logging.getLogger(__name__)

ENCODING_HEADER = "X-Lookalike-Encoding"
# TorchServe metric name -> stage (StageTimes field)
STAGE_METRICS = {"LookalikeDecodeMs": "decode", "LookalikePreprocessMs": "preprocess",
                 "LookalikeInferenceMs": "inference"}  # fmt: skip
REGIONS_HEADER = "X-Lookalike-Regions"


class EmbeddingHandler(BaseHandler):
    def initialize(self, context) -> None:
        properties = context.system_properties
        settings = HandlerSettings.from_model_config(context.model_yaml_config)
        device = worker_device(properties.get("gpu_id"))
        manifest = context.manifest.get("model") or {}
        serialized = manifest.get("serializedFile")
        # which archive serves: "<model name>/<version>" as torch-model-archiver wrote its manifest
        self.archive = f"{manifest.get('modelName', '?')}/{manifest.get('modelVersion', '?')}"
        weights = os.path.join(properties["model_dir"], serialized) if serialized else None
        self.settings = settings
        self.limits = Limits(settings.max_image_bytes, settings.max_image_pixels, settings.min_image_side)
        workers = int((context.model_yaml_config or {}).get("maxWorkers") or 1)
        self.embedder = Embedder.load(settings, weights, device, workers, model_dir=properties["model_dir"])
        self.model = self.embedder.model
        self.device = device
        self.initialized = True

    def preprocess(self, data: list[dict]) -> Batch:
        batch = Batch(size=len(data))
        found: list[tuple[int, str, str]] = []  # (request index, wire encoding, regions) of each payload found
        blobs: list[bytes] = []
        for idx, request in enumerate(data):
            try:
                encoding = option(request, "encoding") or self._header(idx, ENCODING_HEADER) or "base64"
                if encoding not in ENCODINGS:
                    raise BadPayload(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
                scheme = option(request, "regions") or self._header(idx, REGIONS_HEADER) or "none"
                boxes(scheme)  # an unknown scheme is this request's 400
                blobs.append(image_bytes(request))
            except ImageError as exc:
                batch.errors[idx] = exc
                continue
            found.append((idx, encoding, scheme))
        # Decoding runs in parallel threads; a bad image comes back as its own ImageError.
        prepared, batch.times = self.embedder.prepare_timed(blobs, self.limits, [scheme for _, _, scheme in found])
        for (idx, encoding, scheme), item in zip(found, prepared, strict=True):
            if isinstance(item, ImageError):
                batch.errors[idx] = item
            else:
                batch.rows.append(idx)
                batch.encodings.append(encoding)
                batch.schemes.append(scheme)
                batch.pixels.append(item)
        return batch

    def _record(self, batch: Batch) -> None:
        """Each stage's milliseconds and the images decoded, as counters on TorchServe's /metrics
        (model_metrics_auto_detect registers them): rate(LookalikeDecodeMs) / rate(LookalikeImages) is
        the mean decode time of an image, and so on; a slow stage names itself."""
        metrics = self.context.metrics
        for name, ms in STAGE_METRICS.items():
            metrics.add_time(name, round(getattr(batch.times, ms), 3), unit="ms", metric_type=MetricTypes.COUNTER)
        metrics.add_counter("LookalikeImages", len(batch.rows))

    def _header(self, idx: int, name: str) -> str | None:
        """A request header by case-insensitive name (TorchServe keeps the sender's case)."""
        for key, value in self.context.get_all_request_header(idx).items():
            if key.lower() == name.lower() and isinstance(value, str):
                return value
        return None

    def inference(self, batch: Batch, *args, **kwargs) -> Batch:
        if batch.pixels:
            started = time.perf_counter()
            batch.vectors = self.embedder.embed_pixels(torch.cat(batch.pixels))
            batch.times.inference = 1000 * (time.perf_counter() - started)
        return batch

    def postprocess(self, batch: Batch) -> list[bytes]:
        self._record(batch)
        answers: list[bytes] = [b""] * batch.size
        for idx, exc in batch.errors.items():
            logger.info("request %d refused with %d: %s", idx, exc.status, exc.reason)
            self.context.set_response_status(exc.status, exc.reason, idx)
            self.context.set_response_content_type(idx, "application/json")
            answers[idx] = encode_error(exc.status, exc.reason)
        for idx in range(batch.size):
            # Ops see how full batches run (tune maxBatchDelay with it).
            self.context.set_response_header(idx, "X-Lookalike-Batch", str(batch.size))
        if batch.vectors is not None:
            vectors = batch.vectors.numpy()
            model_id = self.embedder.model_id
            start = 0
            for idx, encoding, scheme, pixels in zip(batch.rows, batch.encodings, batch.schemes, batch.pixels,
                                                     strict=True):  # fmt: skip
                rows = vectors[start : start + len(pixels)]
                start += len(pixels)
                regions = list(zip(boxes(scheme), rows[1:], strict=True)) if scheme != "none" else None
                self.context.set_response_content_type(idx, "application/json")
                answers[idx] = encode_vector(rows[0], model_id, encoding, regions=regions, scheme=scheme,
                                             precision=self.embedder.precision, archive=self.archive)  # fmt: skip
        return answers
