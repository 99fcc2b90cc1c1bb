"""What travels between the handler's stages for one TorchServe batch of N requests."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .embedder import StageTimes
from .errors import ImageError


@dataclass
class Batch:
    size: int  # N requests
    rows: list[int] = field(default_factory=list)  # request index of each decoded image
    pixels: list[torch.Tensor] = field(default_factory=list)  # uint8 [1+R,3,S,S] per decoded image
    encodings: list[str] = field(default_factory=list)  # wire encoding per decoded image
    schemes: list[str] = field(default_factory=list)  # region scheme per decoded image
    errors: dict[int, ImageError] = field(default_factory=dict)  # request index -> refusal
    vectors: torch.Tensor | None = None  # float32 [sum of 1+R over rows, D] after inference
    times: StageTimes = field(default_factory=StageTimes)  # ms per stage, for the worker's metrics
