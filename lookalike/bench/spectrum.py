"""The hard benchmark set: a Gaussian with the mean and covariance spectrum of real embeddings.

`lookalike bench index` and `bench opensearch` measure on two sets. The mixture (index.Mixture)
has a low intrinsic dimension and clusters: every graph finds its neighbours. Real catalogues
have some of that structure, but how much no one can say, so the benchmarks also draw from a
Gaussian fitted to EfficientNet-Lite0 embeddings of the bundled photos and their copies (crops,
recolours, reframes, rotations, screenshots): the same mean and the same eigenvalue spectrum, no
clusters. Its nearest neighbours are far and nearly tied, the hard case for any graph.

Only the fitted statistics ship (lite0_spectrum.npz beside this file): the mean, every
eigenvalue, and the eigenvectors that carry most of the variance (TOP_DIRECTIONS); the
remaining directions are drawn as a random orthonormal complement of those, each with its
measured eigenvalue, so the spectrum is exact and no embedding is stored. A draw is L2-normalised,
as the model's vectors are. Wider than 1280-d (ResNet50's 2048), the fit is stretched over the
extra directions (`stretched`).

    lookalike bench spectrum            # the shipped fit's spectrum: variance share, effective dimension
    lookalike bench spectrum --refit    # embed the photos' views again (in-process) and print both
    lookalike bench spectrum --refit --ship   # and replace the shipped statistics
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from lookalike import bench
from lookalike.settings import DEFAULT_MODEL, REPORTS_DIR

STATS = Path(__file__).with_name("lite0_spectrum.npz")
TOP_DIRECTIONS = 256  # eigenvectors shipped (float16); the rest are drawn
VIEWS = 40  # copies of each photo embedded by --refit, besides the photo itself


class Gaussian:
    """Unit vectors [m, D] float32 drawn from N(mean, covariance) of the fitted statistics, then
    L2-normalised; the same `seed` gives the same basis, `stream` which draws come out of it."""

    def __init__(self, d: int, seed: int = 0, stream: int = 0, stats: Path = STATS) -> None:
        fitted = np.load(stats)
        mean, eigenvalues, top = fitted["mean"], fitted["eigenvalues"], fitted["top"].astype(np.float64)
        if d < len(mean):
            raise SystemExit(f"the Gaussian set is fitted to {len(mean)}-d embeddings (EfficientNet-Lite0): "
                             f"give --dim {len(mean)} or more, or --vectors mixture for {d}-d")  # fmt: skip
        if d > len(mean):
            mean, eigenvalues, top = stretched(mean, eigenvalues, top, d)
        top, r = np.linalg.qr(top.T)  # float16 rounding undone: orthonormal again, order and signs kept
        top = (top * np.sign(np.diag(r))).T
        structure = np.random.default_rng([seed, 1280])
        rest = structure.standard_normal((d, d - len(top)))
        rest -= top.T @ (top @ rest)  # off the shipped directions ...
        rest, _ = np.linalg.qr(rest)  # ... and orthonormal
        self.basis = np.concatenate([top, rest.T]).astype(np.float32)  # [D, D], rows by falling eigenvalue
        self.scale = np.sqrt(np.clip(eigenvalues, 0, None)).astype(np.float32)
        self.mean = mean.astype(np.float32)
        self.rng = structure if stream == 0 else np.random.default_rng([seed, stream])
        self.d = d

    def draw(self, m: int) -> np.ndarray:
        z = self.rng.standard_normal((m, self.d), dtype=np.float32) * self.scale
        x = self.mean + z @ self.basis
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def stretched(mean: np.ndarray, eigenvalues: np.ndarray, top: np.ndarray, d: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The fitted statistics lifted to `d` > their dimension, for a wider model (ResNet50's 2048-d):
    the spectrum stretched over `d` ranks (eigenvalue at rank r: the fitted one at r x D / d, scaled
    so the total variance stays), the mean and top directions in the first D coordinates. The same
    shape of spectrum, spread over 1.6x the directions at 2048-d: a harder set, not an easier one."""
    fitted = len(mean)
    ranks = np.arange(d) * (fitted - 1) / (d - 1)
    spread = np.interp(ranks, np.arange(fitted), eigenvalues) * (eigenvalues.sum() / np.interp(
        ranks, np.arange(fitted), eigenvalues).sum())  # fmt: skip
    return np.pad(mean, (0, d - fitted)), spread.astype(np.float32), np.pad(top, ((0, 0), (0, d - fitted)))


def effective_dimension(eigenvalues: np.ndarray) -> float:
    """The participation ratio (sum l)^2 / sum l^2: how many directions the variance really spreads over."""
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def summary(eigenvalues: np.ndarray) -> dict:
    share = np.cumsum(eigenvalues) / eigenvalues.sum()
    shares = {f"variance_in_top_{k}": float(share[k - 1]) for k in (16, 64, 256, 1024) if k <= len(share)}
    return {"effective_dimension": effective_dimension(eigenvalues), **shares}


def embeddings(views: int, seed: int) -> np.ndarray:
    """Lite0 vectors [photos x (views + 1), D] of every bundled photo and `views` seeded copies of
    each, made by the copy protocols (all but pasted), embedded in-process as the served model does.
    Imported here, not at the top: only --refit embeds, and the embedder brings torch, which the
    benchmarks that merely draw from the shipped statistics (bench index) do not need."""
    from lookalike_handler.embedder import Embedder
    from lookalike_handler.settings import HandlerSettings

    from lookalike.copies import KINDS
    from lookalike.photos import all_photos
    from lookalike.serving.weights import resolve

    rng = np.random.default_rng(seed)
    kinds = list(KINDS.values())
    photos = list(all_photos().values())
    embedder = Embedder.load(HandlerSettings(backbone=DEFAULT_MODEL, precision="fp32"), str(resolve(DEFAULT_MODEL)))
    out = []
    for i, data in enumerate(photos):
        copies = [data, *(kinds[int(rng.integers(len(kinds)))](data, rng) for _ in range(views))]
        out.append(embedder.embed_bytes(copies).numpy())
        print(f"  embedded {i + 1}/{len(photos)} photos x {views + 1}", file=sys.stderr, flush=True)
    return np.concatenate(out)


def fit(vectors: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics a Gaussian draws from: mean, eigenvalues (falling), top eigenvectors (float16)."""
    mean = vectors.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(vectors - mean, rowvar=False))
    order = np.argsort(-eigenvalues)
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]
    top = eigenvectors[:, :TOP_DIRECTIONS].T.astype(np.float16)
    return {"mean": mean.astype(np.float32), "eigenvalues": eigenvalues.astype(np.float32), "top": top,
            "samples": np.array(len(vectors))}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--refit", action="store_true", help="embed the bundled photos' views again and fit")
    parser.add_argument("--views", type=int, default=VIEWS, help="copies per photo for --refit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ship", action="store_true", help=f"with --refit: replace {STATS.name}")
    parser.add_argument("--out", type=Path, help="JSON report (default: reports/bench_spectrum.json)")
    args = parser.parse_args(argv)
    if args.ship and not args.refit:
        parser.error("--ship replaces the shipped statistics with a new fit: give --refit too")
    shipped = np.load(STATS)
    report = {"shipped": {"samples": int(shipped["samples"]), **summary(shipped["eigenvalues"])}}
    if args.refit:
        vectors = embeddings(args.views, args.seed)
        fitted = fit(vectors)
        report["refit"] = {"samples": len(vectors), **summary(fitted["eigenvalues"])}
        if args.ship:
            np.savez_compressed(STATS, mean=fitted["mean"], eigenvalues=fitted["eigenvalues"], top=fitted["top"],
                                samples=fitted["samples"])  # fmt: skip
            print(f"wrote {STATS}")
    print(f"{'fit':>7} {'samples':>8} {'eff. dim':>9} " + " ".join(f"{f'top {k}':>8}" for k in (16, 64, 256, 1024)))
    for name, row in report.items():
        shares = " ".join(f"{row.get(f'variance_in_top_{k}', float('nan')):>8.3f}" for k in (16, 64, 256, 1024))
        print(f"{name:>7} {row['samples']:>8} {row['effective_dimension']:>9.1f} {shares}")
    out = args.out or REPORTS_DIR / "bench_spectrum.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"JSON: {out}")
    return 0
