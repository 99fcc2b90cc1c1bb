"""A trained projection head on the frozen backbone (`lookalike finetune` makes it).

The head is one linear layer, `[D_backbone] -> [D]`, whose weights ship in the archive as an
extra file (`handler.head`); its output is L2-normalised like any embedding.
"""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @classmethod
    def load(cls, path: str) -> ProjectionHead:
        state = torch.load(path, map_location="cpu", weights_only=True)
        out_features, in_features = state["linear.weight"].shape
        head = cls(in_features, out_features)
        head.load_state_dict(state)
        return head.eval()


class WithHead(nn.Module):
    """The backbone's trunk, then the head."""

    def __init__(self, trunk: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.trunk, self.head = trunk, head
        self.dimension = head.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))
