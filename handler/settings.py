"""Handler settings: one frozen dataclass, read from the `handler:` section of model-config.yaml.

Environment variables prefixed `LOOKALIKE_HANDLER_` override a key at worker start
(`LOOKALIKE_HANDLER_PRECISION=fp32` forces fp32), so ops can change a knob without
rebuilding the archive. The launcher (lookalike.serving.torchserve) forwards exactly these
variables to the workers; the search side's `LOOKALIKE_*` settings never reach them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "LOOKALIKE_HANDLER_"  # lookalike.settings.WORKER_PREFIX; the handler imports nothing of ours
FITS = ("crop", "full")


@dataclasses.dataclass(frozen=True)
class HandlerSettings:
    backbone: str = "resnet50"
    # Written by the archive builder from the backbone registry; checked at start-up.
    dimension: int | None = None
    # auto (bf16 where the CPU has AMX/AVX512-BF16 or on CUDA, else fp32) | fp32 | bf16 | fp16 | int8
    # (CPU only: the archive's quantized trunk, int8.pt, made and checked by `lookalike mar`).
    precision: str = "auto"
    # "file": the archive's serialized weights; "random": seeded random weights (tests, benchmarks).
    weights: str = "file"
    seed: int = 0
    # Upload limits. 16 MiB of bytes; 40 megapixels (PIL's own default bomb limit is ~89 MP).
    max_image_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_image_side: int = 16
    # Torch intra-op threads per worker; 0 = the worker's share: physical cores // maxWorkers.
    threads: int = 0
    # Rows per forward pass: a larger batch (many requests, or an upload and its regions) runs in
    # slices of this many. 0 = automatic: the backbone's figure on a CPU (efficientnet_lite0: 4, its
    # activations then stay in cache), the whole batch on a GPU.
    forward_rows: int = 0
    # Threads decoding a batch's images in parallel (Pillow releases the GIL); 0 = the worker's
    # share of the cores, at most 8.
    decode_threads: int = 0
    # "exact" (equals torchvision's preprocessing), "draft" (JPEG DCT-domain downscaling: faster,
    # slightly different pixels; see README, Speed) or "auto": draft when the precision resolves to
    # bf16/fp16 (the fast path, quality bound tested together), exact at fp32.
    decode: str = "auto"
    # Where JPEGs are decoded: "auto" (a GPU worker decodes them on its GPU in batches, nvJPEG; a CPU
    # worker with Pillow), "cpu" (always Pillow) or "device" (on the worker's device even when it is
    # a CPU: the GPU path's code, for tests and comparisons). Other images always go to Pillow.
    decode_on: str = "auto"
    # "auto" (channels_last on CPUs and for bf16/fp16 on GPUs), "channels_last" or "contiguous" (NCHW).
    memory_format: str = "auto"
    # How an image fills the model's input: "crop" (resize the short side, centre crop: torchvision's
    # recipe, equal to weights.transforms()) or "full" (the whole image resized to the input size,
    # aspect not kept). Vectors of different fits are different spaces: the model id says which.
    fit: str = "crop"
    # A fine-tuned archive: the projection head's weights (a file packed in the archive) and the
    # model id its vectors are served under (`lookalike finetune` writes both).
    head: str | None = None
    model_id: str | None = None

    @classmethod
    def from_model_config(
        cls, model_yaml_config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> HandlerSettings:
        """Build from the parsed model-config.yaml (its `handler:` section) plus env overrides."""
        section = dict((model_yaml_config or {}).get("handler") or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - set(fields))
        if unknown:
            raise ConfigError(f"unknown handler settings in model-config.yaml: {', '.join(unknown)}")
        env = os.environ if environ is None else environ
        for name in fields:
            value = env.get(ENV_PREFIX + name.upper())
            if value is not None and value != "":
                section[name] = value
        try:
            kwargs = {name: _coerce(str(fields[name].type), value) for name, value in section.items()}
        except ValueError as exc:
            raise ConfigError(f"bad handler setting: {exc}") from exc
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16", "int8", "auto"):
            raise ConfigError(f"precision must be fp32, bf16, fp16, int8 or auto, not {self.precision!r}")
        if self.precision == "int8" and self.head:
            raise ConfigError("precision int8 quantizes the backbone alone: a fine-tuned head is not supported")
        if self.decode not in ("exact", "draft", "auto"):
            raise ConfigError(f"decode must be 'exact', 'draft' or 'auto', not {self.decode!r}")
        if self.decode_on not in ("auto", "cpu", "device"):
            raise ConfigError(f"decode_on must be 'auto', 'cpu' or 'device', not {self.decode_on!r}")
        if self.memory_format not in ("auto", "channels_last", "contiguous"):
            raise ConfigError(f"memory_format must be auto, channels_last or contiguous, not {self.memory_format!r}")
        if self.fit not in FITS:
            raise ConfigError(f"fit must be one of {', '.join(FITS)}, not {self.fit!r}")
        if self.weights not in ("file", "random"):
            raise ConfigError(f"weights must be 'file' or 'random', not {self.weights!r}")
        if self.decode_threads < 0 or self.threads < 0 or self.forward_rows < 0:
            raise ConfigError("threads, decode_threads and forward_rows must be 0 (automatic) or positive")
        for name in ("max_image_bytes", "max_image_pixels", "min_image_side"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")


def _coerce(type_name: str, value: Any) -> Any:
    if "int" in str(type_name):
        if value is None:
            return None
        return int(value)
    return str(value)
