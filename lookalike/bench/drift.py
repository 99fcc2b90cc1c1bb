"""What a stale projection costs, and what the refit buys back: a catalogue that changes character.

The embedded index fits its reduced graph's principal directions once it holds PROJECT_SIZE
vectors (lookalike.index.graph). If the photos that come later lie elsewhere (a shop adds a new
department), the directions miss them. Here the index is filled with `--n` vectors of one mixture
(set A), a search fits the projection, then `--n` more of another mixture (set B: other
directions) arrive. Measured twice on the same vectors: with the refit disabled (the stale fit
walks B) and at the defaults (the added vectors are seen to drift, the graph is refitted and
rebuilt). Reports, per run: the share of the added vectors' variance the fit keeps, whether a
refit happened, and recall@10 of fresh queries from each set against exact search.

    lookalike bench drift --n 60000
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import bench
from lookalike.bench.index import CHUNK, Mixture
from lookalike.index import projection
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.projection import Projection
from lookalike.settings import REPORTS_DIR

K = 10


def fill(index: EmbeddedIndex, drawn: Mixture, n: int, prefix: str) -> np.ndarray:
    rows = []
    for start in range(0, n, CHUNK):
        xb = drawn.draw(min(CHUNK, n - start))
        index.upsert([Doc(id=f"{prefix}{start + i}", vector=v, model="synthetic") for i, v in enumerate(xb)])
        rows.append(xb)
    return np.concatenate(rows)


def walk(index: EmbeddedIndex) -> Projection:
    if index.graph.projection is None:
        raise SystemExit("the index is below PROJECT_SIZE, so it has no projection: give a larger --n")
    return index.graph.projection


def run(n: int, dim: int, queries: int, refit: bool, ef_search: int) -> dict:
    """Fill A, fit, add B, search: with the refit allowed or not."""
    saved = projection.DRIFT
    projection.DRIFT = saved if refit else 1.0  # a share can never fall a whole 1.0 below the fit's
    try:
        with tempfile.TemporaryDirectory(prefix="lookalike-bench-drift-") as tmp:
            index = EmbeddedIndex(Path(tmp), "bench", "synthetic", dim, projection=128)
            xa = fill(index, Mixture(dim, seed=1), n, "a")
            index.search(xa[0], K)  # builds the reduced graph and fits it on A
            fitted = walk(index)
            first_fit = fitted.fit_id
            xb = fill(index, Mixture(dim, seed=2), n, "b")
            started = time.perf_counter()
            index.search(xa[0], K)  # adds B to the graph, measuring how much of it the fit keeps
            seen_share = walk(index).seen_share
            index.search(xa[0], K)  # refits and rebuilds if B drifted (and the refit is allowed)
            catch_up_s = time.perf_counter() - started
            refitted = walk(index).fit_id != first_fit
            row = {"refit_allowed": refit, "fit_kept": fitted.kept, "added_kept": seen_share, "refitted": refitted,
                   "kept_after": walk(index).kept, "catch_up_s": catch_up_s}  # fmt: skip
            everything = np.concatenate([xa, xb])
            names = [f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)]
            for name, seed in (("a", 1), ("b", 2)):
                xq = Mixture(dim, seed=seed, stream=3).draw(queries)
                exact = np.argsort(-(xq @ everything.T), axis=1)[:, :K]
                found = [{hit.id for hit in index.search(query, K, ef_search=ef_search)} for query in xq]
                row[f"recall_{name}"] = float(np.mean([len(hits & {names[j] for j in want}) / K
                                                       for hits, want in zip(found, exact, strict=True)]))  # fmt: skip
            index.close()
            return row
    finally:
        projection.DRIFT = saved


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--n", type=int, default=60_000, help="vectors of each set (A, then B)")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=200, help="fresh queries from each set")
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_drift.json")
    args = parser.parse_args(argv)
    rows = [run(args.n, args.dim, args.queries, refit, args.ef_search) for refit in (False, True)]
    print(f"\n{args.n:,} vectors of set A, then {args.n:,} of set B (another mixture), {args.dim}-d, 128 directions, "
          f"efSearch {args.ef_search}, k {K}")  # fmt: skip
    print(f"{'refit':>6} {'fit keeps':>9} {'B keeps':>8} {'refitted':>8} {'after':>6} {'catch-up s':>10} "
          f"{'recall A':>8} {'recall B':>8}")  # fmt: skip
    for row in rows:
        print(f"{'on' if row['refit_allowed'] else 'off':>6} {row['fit_kept']:>9.3f} {row['added_kept']:>8.3f} "
              f"{'yes' if row['refitted'] else 'no':>8} {row['kept_after']:>6.3f} {row['catch_up_s']:>10.1f} "
              f"{row['recall_a']:>8.4f} {row['recall_b']:>8.4f}")  # fmt: skip
    bench.write_report(args.out, args, rows=rows)
    return 0
