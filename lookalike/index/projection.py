"""The catalogue's own principal directions: the reduced space the embedded index's graph walks in.

Image embeddings spread their variance over few directions (Lite0's effective dimension is 56
of 1280; 93 % of the variance lies in 256 directions), so most of a full-length distance is
spent on noise. A large graph therefore holds each vector's coordinates along the top
`dimension` principal directions of a sample of the index's own vectors; the exact re-rank on
the full float32 vectors (SQLite) keeps scores and order exact over what the walk proposes.

Centred coordinates keep Euclidean distance (an inner product would not survive the centring),
and on unit vectors Euclidean distance ranks as cosine does, so the reduced graph uses L2.

The fit is kept honest as the catalogue grows: every vector added after the fit is measured
(the share of its centred variance the directions keep, at no extra cost: the projection is
computed anyway), and when those vectors keep DRIFT less than the fitted sample did, the graph
is refitted and rebuilt (lookalike.index.graph).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KEEP = 0.84  # a graph walks the fewest directions, in steps of STEP, that keep this share of the variance
STEP = 32
DRIFT = 0.05  # refit when vectors added since the fit keep 5 points less of their variance than its sample
DRIFT_SEEN = 0.2  # ... judged once they number a fifth of the vectors the graph held at the fit
DRIFT_MIN = 2_000  # ... and at least this many


@dataclass
class Projection:
    mean: np.ndarray  # [D] float32
    basis: np.ndarray  # [D, d] float32: the top d principal directions as columns
    kept: float  # share of the fitted sample's centred variance the directions keep
    population: int  # vectors the graph held when it was fitted
    fit_id: str = field(default_factory=lambda: secrets.token_hex(8))
    marks: dict[str, int] = field(default_factory=dict)  # the last row key of each table at the fit
    seen: int = 0  # vectors added since the fit, and their centred variance (total, kept)
    seen_energy: float = 0.0
    seen_kept: float = 0.0
    asked: int = 0  # the fewest directions the fit was asked for (0: as many as it has)

    @classmethod
    def fit(cls, sample: np.ndarray, dimension: int, population: int, keep: float = 0.0) -> Projection:
        """The top principal directions of `sample` [n, D] (float64 covariance): `dimension` of them,
        or with `keep` > 0 more in steps of STEP until they keep that share of its centred variance
        (at most twice `dimension`, and at most half of D)."""
        mean = sample.mean(axis=0, dtype=np.float64)
        centred = sample - mean
        covariance = centred.T.astype(np.float64) @ centred / max(1, len(sample) - 1)
        eigenvalues, vectors = np.linalg.eigh(covariance)  # ascending
        order = np.argsort(eigenvalues)[::-1]
        shares = np.cumsum(eigenvalues[order]) / max(float(eigenvalues.sum()), 1e-30)
        chosen, most = dimension, most_directions(dimension, len(mean))
        while keep and chosen + STEP <= most and shares[chosen - 1] < keep:
            chosen += STEP
        top = order[:chosen]
        basis = np.ascontiguousarray(vectors[:, top], dtype=np.float32)
        return cls(mean.astype(np.float32), basis, float(shares[chosen - 1]), population, asked=dimension)

    @property
    def dimension(self) -> int:
        return self.basis.shape[1]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Coordinates [n, d] float32 of `vectors` [n, D] along the directions, about the mean."""
        return np.ascontiguousarray((vectors - self.mean) @ self.basis, dtype=np.float32)

    def observe(self, vectors: np.ndarray, coordinates: np.ndarray) -> None:
        """Count vectors added since the fit: their centred variance, and the share the directions keep."""
        self.seen += len(vectors)
        self.seen_energy += float(np.square(vectors - self.mean).sum())
        self.seen_kept += float(np.square(coordinates).sum())

    @property
    def seen_share(self) -> float | None:
        """The share of their variance that vectors added since the fit keep (None: none yet)."""
        return self.seen_kept / self.seen_energy if self.seen_energy else None

    def short_of(self, keep: float) -> bool:
        """Whether a fit asked for now would take more directions: these keep less than `keep` and
        there is room for another STEP (a fit made before the rule, or under a lower `keep`)."""
        asked = self.asked or self.dimension
        return self.kept < keep and self.dimension + STEP <= most_directions(asked, len(self.mean))

    def drifted(self) -> bool:
        """Whether enough vectors came since the fit, and they keep DRIFT less of their variance."""
        enough = self.seen >= max(DRIFT_MIN, DRIFT_SEEN * self.population)
        share = self.seen_share
        return enough and share is not None and share < self.kept - DRIFT

    def describe(self) -> dict:
        return {"dimension": self.dimension, "asked": self.asked or self.dimension, "kept": round(self.kept, 4),
                "fitted_at": self.population,
                "added_since": self.seen, "added_kept": None if self.seen_share is None else round(self.seen_share, 4),
                "refit_below": round(self.kept - DRIFT, 4)}  # fmt: skip

    # -- stored beside the graph --------------------------------------------------------------
    def save(self, path: Path) -> None:
        """The directions (npz, written once per fit) and the running counts (in `state()`)."""
        if path.exists():
            with np.load(path) as saved:  # closed again: a flush must not leave the file open
                if saved["fit_id"].item() == self.fit_id:
                    return
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, mean=self.mean, basis=self.basis, fit_id=np.array(self.fit_id))
        tmp.replace(path)

    def state(self) -> dict:
        return {"fit_id": self.fit_id, "kept": self.kept, "population": self.population, "marks": self.marks,
                "seen": self.seen, "seen_energy": self.seen_energy, "seen_kept": self.seen_kept,
                "asked": self.asked}  # fmt: skip

    @classmethod
    def load(cls, path: Path, state: dict) -> Projection:
        """The fit saved at `path` with the counts in `state` (graph.json); ValueError if they are not
        of one fit (a save cut short between the two)."""
        with np.load(path) as saved:
            if saved["fit_id"].item() != state["fit_id"]:
                raise ValueError(f"{path.name} is fit {saved['fit_id'].item()}, the graph's state {state['fit_id']}")
            mean, basis = saved["mean"], saved["basis"]
        fields = {key: state[key] for key in ("kept", "population", "fit_id", "marks", "seen", "seen_energy",
                                              "seen_kept")}  # fmt: skip
        # a fit saved before `asked` was recorded was asked for exactly the directions it has
        return cls(mean, basis, **fields, asked=int(state.get("asked", basis.shape[1])))


def most_directions(asked: int, full: int) -> int:
    """The most directions a fit asked for `asked` takes: twice that, at most half the full dimension."""
    return max(asked, min(2 * asked, full // 2))
