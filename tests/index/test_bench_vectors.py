"""The benchmarks' vector sets: the spectrum-matched Gaussian draws what its shipped statistics say,
and `lookalike bench index` measures both sets (fast tier: a few thousand vectors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.bench import index as bench_index
from lookalike.bench import spectrum
from lookalike.index import embedded, graph


@pytest.mark.slow  # 3-14 s of draws: the fast tier keeps its minute
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


def test_the_gaussian_stretched_to_2048_keeps_its_variance_and_spreads_it_wider():
    fitted = np.load(spectrum.STATS)
    mean, eigenvalues, top = spectrum.stretched(fitted["mean"], fitted["eigenvalues"], fitted["top"], 2048)
    eigenvalues = eigenvalues.astype(np.float64)
    assert len(eigenvalues) == 2048 and eigenvalues.sum() == pytest.approx(float(fitted["eigenvalues"].sum()), rel=1e-4)
    assert np.all(np.diff(eigenvalues) <= 1e-12)  # still falling
    narrow = spectrum.effective_dimension(fitted["eigenvalues"].astype(np.float64))
    assert spectrum.effective_dimension(eigenvalues) == pytest.approx(narrow * 2048 / 1280, rel=0.05)
    assert mean.shape == (2048,) and np.linalg.norm(mean) == pytest.approx(float(np.linalg.norm(fitted["mean"])))
    assert top.shape == (spectrum.TOP_DIRECTIONS, 2048) and not np.any(top[:, 1280:])


def test_a_dimension_the_gaussian_was_not_fitted_at_is_a_clear_error():
    with pytest.raises(SystemExit, match=r"fitted to 1280-d.*--vectors mixture"):
        spectrum.Gaussian(512)
    with pytest.raises(SystemExit, match="unknown --vectors cube"):
        bench_index.vector_sets("mixture,cube")


@pytest.mark.slow
def test_bench_index_measures_both_sets_and_the_reduced_graph_beside_the_full(tmp_path, capsys, monkeypatch):
    """The benchmark end to end on 3,000 vectors (a graph build and a fresh process per graph); the
    projection starts at 1,000 vectors here, so the default graph is the reduced one."""
    monkeypatch.setattr(graph, "PROJECT_SIZE", 1000)
    monkeypatch.setattr(graph, "FIT_SAMPLE", 1000)
    out = tmp_path / "report.json"
    argv = ["--n", "3000", "--queries", "20", "--graphs", "sq8,sq8:p0:m16:efc100,rabitq:p0", "--ef-search", "64",
            "--out", str(out)]  # fmt: skip
    assert bench_index.main(argv) == 0
    report = json.loads(out.read_text())
    measured = {(r["vectors"], r["graph_spec"]): r for r in report["results"]}
    efc = embedded.EF_CONSTRUCTION  # the project's default build
    specs = (f"sq8:p128:m32:efc{efc}", "sq8:p0:m16:efc100", f"rabitq:p0:m32:efc{efc}")
    assert set(measured) == {(v, spec) for v in ("mixture", "gaussian") for spec in specs}
    assert all(0.5 <= r["rows"][0]["recall_at_10"] <= 1 for r in measured.values())
    reduced = measured[("gaussian", specs[0])]["projection"]
    assert reduced["dimension"] == 128 and 0.5 < reduced["kept"] < 1
    assert measured[("gaussian", "sq8:p0:m16:efc100")]["projection"] is None
    table = capsys.readouterr().out
    assert f"gaussian rabitq:p0:m32:efc{efc}" in table and f"mixture  sq8:p128:m32:efc{efc}" in table
    with pytest.raises(SystemExit, match="cannot read 'q5'"):
        bench_index.graph_specs("sq8:q5")
