"""The benchmarks' vector sets: the spectrum-matched Gaussian draws what its shipped statistics say,
and `lookalike bench index` measures both sets (fast tier: a few thousand vectors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.bench import index as bench_index
from lookalike.bench import spectrum


def test_the_gaussian_has_the_shipped_mean_and_spectrum_and_is_reproducible():
    fitted = np.load(spectrum.STATS)
    assert fitted["top"].shape == (spectrum.TOP_DIRECTIONS, 1280) and int(fitted["samples"]) > 1000
    drawn = spectrum.Gaussian(1280, seed=1)
    basis = drawn.basis.astype(np.float64)
    assert np.allclose(basis[::7] @ basis.T, np.eye(1280)[::7], atol=1e-6)  # orthonormal, the drawn part too
    x = drawn.draw(4000)
    assert x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    # Before normalising, a draw is mean + N(0, covariance): compare with the fitted statistics.
    z = drawn.rng.standard_normal((4000, 1280), dtype=np.float32) * drawn.scale @ drawn.basis
    variance_along = (z @ basis[:5].T).var(axis=0)
    assert variance_along == pytest.approx(fitted["eigenvalues"][:5], rel=0.1)
    centre = np.mean(x, axis=0)
    assert float(centre @ fitted["mean"]) / (np.linalg.norm(centre) * np.linalg.norm(fitted["mean"])) > 0.99
    assert np.array_equal(spectrum.Gaussian(1280, seed=1).draw(3), spectrum.Gaussian(1280, seed=1).draw(3))
    assert not np.allclose(spectrum.Gaussian(1280, seed=1, stream=1).draw(3), x[:3])  # held-out queries


def test_a_dimension_the_gaussian_was_not_fitted_at_is_a_clear_error():
    with pytest.raises(SystemExit, match=r"fitted to 1280-d.*--vectors mixture"):
        spectrum.Gaussian(2048)
    with pytest.raises(SystemExit, match="unknown --vectors cube"):
        bench_index.vector_sets("mixture,cube")


@pytest.mark.slow
def test_bench_index_measures_both_sets(tmp_path, capsys):
    """The benchmark end to end on 3,000 vectors (a graph build and a fresh process per kind)."""
    out = tmp_path / "report.json"
    argv = ["--n", "3000", "--queries", "20", "--quantization", "sq8,rabitq", "--ef-search", "64", "--out", str(out)]
    assert bench_index.main(argv) == 0
    report = json.loads(out.read_text())
    measured = {(r["vectors"], r["quantization"]): r["rows"][0]["recall_at_10"] for r in report["results"]}
    assert set(measured) == {(v, q) for v in ("mixture", "gaussian") for q in ("sq8", "rabitq")}
    assert all(0.5 <= recall <= 1 for recall in measured.values())
    table = capsys.readouterr().out
    assert "gaussian rabitq" in table and " mixture   sq8" in table
