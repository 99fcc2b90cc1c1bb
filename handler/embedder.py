"""Image bytes -> `[N,D]` float32 L2-normalised vectors: decode in parallel, then the model.

Used by the TorchServe handler and, unchanged, by the benchmark's in-process baseline, so
"served vs raw" compares the same code.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from . import device_decode
from .backbones import Backbone, get_backbone
from .decode import DEFAULT_LIMITS, Limits, decode_image
from .errors import ConfigError, ImageError
from .graph import for_reduced_precision
from .head import ProjectionHead, WithHead
from .precision import autocast, resolve_precision
from .quantize import INT8_FILE, int8_record, int8_summary
from .regions import crops
from .settings import HandlerSettings
from .transforms import FIT, normalize_batch

logger = logging.getLogger(__name__)


def cpu_cores() -> int:
    """The cores this process may run on (the affinity mask: containers and taskset count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# torch's own default before anyone changes it: the physical cores (hyper-threads slow convolutions).
TORCH_DEFAULT_THREADS = torch.get_num_threads()
MAX_DECODE_THREADS = 8  # decode threads per worker at most (more ran no faster: docs/constants.md)


def thread_budget(
    settings: HandlerSettings, workers: int, cores: int, torch_cores: int = TORCH_DEFAULT_THREADS
) -> tuple[int, int]:
    """(torch intra-op threads, decode threads) for one of `workers` workers on one machine.

    0 in the settings means automatic, the worker's share: of torch's default (physical cores) for
    the model, of all `cores` for decoding, at least 1 and at most MAX_DECODE_THREADS decode threads.
    """
    workers = max(1, workers)
    return (
        settings.threads or max(1, torch_cores // workers),
        settings.decode_threads or max(1, min(MAX_DECODE_THREADS, cores // workers)),
    )


def worker_device(gpu_id: int | str | None) -> torch.device:
    """The GPU TorchServe assigned (`gpu_id`) when CUDA is available, else the CPU."""
    if gpu_id is not None and torch.cuda.is_available():
        return torch.device("cuda", int(gpu_id))
    return torch.device("cpu")


@dataclass
class StageTimes:
    """Milliseconds a batch spent in each stage of the worker's path, summed over its images (the
    decode threads overlap, so decode + preprocess may exceed the batch's wall time)."""

    decode: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0


class Embedder:
    """A loaded backbone on one device at one precision, with its decoding policy."""

    def __init__(
        self,
        backbone: Backbone,
        model: torch.nn.Module,
        device: torch.device,
        precision: str,
        decode_threads: int = 1,
        draft: bool = False,
        channels_last: bool | None = None,
        fit: str = "crop",
        model_id: str | None = None,
        forward_rows: int = 0,
        device_decode: bool = False,
    ):
        self.backbone = backbone
        self.fit = fit
        self._fit = FIT[fit]
        self._model_id = model_id
        self._dimension: int = model.dimension if isinstance(model, WithHead) else backbone.dimension
        self.device = device
        self.precision = precision
        # channels_last lets oneDNN (AVX2 fp32 too, AMX/AVX512 bf16) and cuDNN (fp16/bf16) pick their
        # fastest kernels; on CUDA fp32 it was not measured to pay, so that path is left as it was.
        reduced = precision in ("bf16", "fp16")
        self.channels_last = device.type == "cpu" or reduced if channels_last is None else channels_last
        if reduced:
            model = for_reduced_precision(model)
        model = model.to(device).eval()
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        # Decode at no less than twice the resize target, so the antialiased resize still does the smoothing.
        self.draft_short_side = 2 * backbone.spec.resize if draft else None
        # Rows per forward pass; 0: the backbone's CPU figure on a CPU, the whole batch on a GPU.
        self.forward_rows = forward_rows or (backbone.cpu_rows if device.type == "cpu" else 0)
        self.pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") if decode_threads > 1 else None
        # JPEGs decoded, resized and cropped on the worker's device in batches (device_decode.py)
        self.device_decode = device_decode

    @classmethod
    def load(
        cls,
        settings: HandlerSettings,
        weights_path: str | None,
        device: torch.device | str = "cpu",
        workers: int = 1,
        model_dir: str | None = None,
    ) -> Embedder:
        """Build the backbone named in `settings` from `weights_path` (or seeded random weights),
        with the projection head `settings.head` (a file in `model_dir`) on top if there is one.

        `workers`: how many workers of this model share the machine's cores (TorchServe's maxWorkers).
        """
        device = torch.device(device)
        backbone = get_backbone(settings.backbone)
        head = ProjectionHead.load(os.path.join(model_dir or ".", settings.head)) if settings.head else None
        if head is not None and head.linear.in_features != backbone.dimension:
            raise ConfigError(f"head {settings.head} takes {head.linear.in_features}-d input, {backbone.id} gives "
                              f"{backbone.dimension}")  # fmt: skip
        dimension = head.linear.out_features if head is not None else backbone.dimension
        if settings.dimension is not None and settings.dimension != dimension:
            raise ConfigError(f"model-config says dimension {settings.dimension} but the model gives {dimension}")
        torch_threads, decode_threads = thread_budget(settings, workers, cpu_cores())
        if torch_threads != torch.get_num_threads():
            torch.set_num_threads(torch_threads)
        if settings.weights == "random":
            logger.warning("%s runs with RANDOM weights (seed %d): no relevance", backbone.id, settings.seed)
            torch.manual_seed(settings.seed)
            weights_path = None
        elif weights_path is None or not os.path.isfile(weights_path):
            raise ConfigError(f"weights file for {backbone.id} not found: {weights_path}")
        record = int8_record(model_dir) if settings.precision == "auto" and head is None else None
        precision = resolve_precision(settings.precision, device, int8_record=record)
        if record is not None:
            logger.info("precision auto: %s (the archive's int8 trunk: %s)", precision, int8_summary(record))
        if precision == "int8":
            path = os.path.join(model_dir or ".", INT8_FILE)
            if not os.path.isfile(path):
                raise ConfigError(f"precision int8 needs the archive's quantized trunk {path}: build it with "
                                  f"lookalike mar --precision int8")  # fmt: skip
            torch.backends.quantized.engine = "x86"
            model = torch.jit.load(path, map_location="cpu")
        else:
            model = backbone.build(weights_path)
        if head is not None:
            model = WithHead(model, head)
        draft = settings.decode == "draft" or (settings.decode == "auto" and precision != "fp32")
        logger.info(
            "loaded %s (%d-d) on %s at %s, %d torch threads, %d decode threads, %s decode",
            backbone.id,
            backbone.dimension,
            device,
            precision,
            torch.get_num_threads(),
            decode_threads,
            "draft" if draft else "exact",
        )
        channels_last = {"auto": None, "channels_last": True, "contiguous": False}[settings.memory_format]
        on_device = settings.decode_on == "device" or (settings.decode_on == "auto" and device.type == "cuda")
        if on_device:
            logger.info("JPEGs decoded on %s in batches; other images on the CPU", device)
        return cls(backbone, model, device, precision, decode_threads, draft, channels_last, settings.fit,
                   settings.model_id, settings.forward_rows, on_device)  # fmt: skip

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def model_id(self) -> str:
        """The vector space's name: a fine-tuned archive's own id, else the backbone and its fit
        unless it is the default crop (`efficientnet_lite0`, `efficientnet_lite0+full`). Indexes
        refuse vectors of another."""
        if self._model_id:
            return self._model_id
        return self.backbone.id if self.fit == "crop" else f"{self.backbone.id}+{self.fit}"

    def pixels(self, img: Image.Image) -> torch.Tensor:
        """One RGB image -> uint8 `[3,S,S]` (resize, and crop or not), the per-image part of preprocessing."""
        return self._fit(img, self.backbone.spec)

    def prepare(
        self, blobs: Sequence[bytes], limits: Limits = DEFAULT_LIMITS, schemes: Sequence[str] | None = None
    ) -> list[torch.Tensor | ImageError]:
        """Decode + resize + crop each upload (in parallel threads): a uint8 `[1+R,3,S,S]` (the whole
        image, then the R regions of its scheme in `schemes`, none by default) or its ImageError."""
        return self.prepare_timed(blobs, limits, schemes)[0]

    def prepare_timed(
        self, blobs: Sequence[bytes], limits: Limits = DEFAULT_LIMITS, schemes: Sequence[str] | None = None
    ) -> tuple[list[torch.Tensor | ImageError], StageTimes]:
        """`prepare`, and the milliseconds its stages took, summed over the uploads (decode: the
        bytes to an RGB image; preprocess: regions cut, resized and cropped to uint8 pixels). With
        `device_decode`, the JPEGs the device takes are decoded there as one batch (device_decode.py)
        and the rest on the CPU; every tensor is then on the worker's device."""
        wanted = list(schemes) if schemes is not None else ["none"] * len(blobs)
        if not self.device_decode:
            return self._prepare_cpu(blobs, limits, wanted)
        started = time.perf_counter()
        results: list[torch.Tensor | ImageError | None] = [None] * len(blobs)
        taken: list[tuple[int, device_decode.Header]] = []
        for idx, (data, scheme) in enumerate(zip(blobs, wanted, strict=True)):
            if scheme != "none":
                continue  # regions are cut from a PIL image: the CPU path
            try:
                found = device_decode.header(data, limits)
            except ImageError as exc:  # over a limit, read from the header: refused before decoding
                results[idx] = exc
                continue
            if found is not None:
                taken.append((idx, found))
        decoded_all = device_decode.decode([blobs[idx] for idx, _ in taken], self.device)
        self._sync()
        decoded = time.perf_counter()
        for (idx, found), pixels in zip(taken, decoded_all, strict=True):
            if pixels is not None:  # else the CPU path decodes it (and names what is wrong with it)
                upright = device_decode.orient(pixels, found.orientation)
                results[idx] = device_decode.preprocess(upright, self.backbone.spec, self.fit).unsqueeze(0)
        self._sync()
        times = StageTimes(decode=1000 * (decoded - started), preprocess=1000 * (time.perf_counter() - decoded))
        rest = [idx for idx, item in enumerate(results) if item is None]
        if rest:
            fallback, cpu_times = self._prepare_cpu([blobs[i] for i in rest], limits, [wanted[i] for i in rest])
            times.decode += cpu_times.decode
            times.preprocess += cpu_times.preprocess
            for idx, item in zip(rest, fallback, strict=True):
                results[idx] = item.to(self.device) if isinstance(item, torch.Tensor) else item
        return [item for item in results if item is not None], times

    def _sync(self) -> None:
        """Wait for the device's queued work, so each stage's time is its own."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _prepare_cpu(
        self, blobs: Sequence[bytes], limits: Limits, wanted: list[str]
    ) -> tuple[list[torch.Tensor | ImageError], StageTimes]:
        """Each upload decoded by Pillow (in the decode threads), its regions cut, resized and cropped."""

        def one(data: bytes, scheme: str) -> tuple[torch.Tensor | ImageError, float, float]:
            started = time.perf_counter()
            try:
                img = decode_image(data, limits, self.draft_short_side)
            except ImageError as exc:
                return exc, time.perf_counter() - started, 0.0
            decoded = time.perf_counter()
            try:
                regions = crops(img, scheme, self.backbone.spec.resize)
                pixels: torch.Tensor | ImageError = torch.stack(
                    [self.pixels(img)] + [self.pixels(region) for region in regions]
                )
            except ImageError as exc:
                pixels = exc
            return pixels, decoded - started, time.perf_counter() - decoded

        if self.pool is None or len(blobs) < 2:
            done = [one(data, scheme) for data, scheme in zip(blobs, wanted, strict=True)]
        else:
            done = list(self.pool.map(one, blobs, wanted))
        times = StageTimes(decode=1000 * sum(item[1] for item in done), preprocess=1000 * sum(item[2] for item in done))
        return [item[0] for item in done], times

    def embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 `[N,3,S,S]` -> float32 `[N,D]` L2-normalised, on the CPU, `forward_rows` rows per pass."""
        step = self.forward_rows or len(pixels)
        if len(pixels) <= step:
            return self._forward(pixels)
        return torch.cat([self._forward(pixels[start : start + step]) for start in range(0, len(pixels), step)])

    @torch.inference_mode()
    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        batch = normalize_batch(pixels.to(self.device, non_blocking=True), self.backbone.spec)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, self.device):
            features = self.model(batch)
        return F.normalize(features.float(), dim=1).cpu()

    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB images -> float32 `[N,D]` L2-normalised."""
        return self.embed_pixels(torch.stack([self.pixels(img) for img in images]))

    def embed_bytes(self, blobs: Sequence[bytes], limits: Limits = DEFAULT_LIMITS) -> torch.Tensor:
        """Valid uploads -> float32 `[N,D]`; raises the first ImageError (benchmarks, tests)."""
        prepared = self.prepare(blobs, limits)
        tensors = []
        for item in prepared:
            if isinstance(item, ImageError):
                raise item
            tensors.append(item)
        return self.embed_pixels(torch.cat(tensors))
