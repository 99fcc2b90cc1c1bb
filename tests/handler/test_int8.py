"""int8: the bound that decides whether a quantized trunk may stand in for fp32, the quantization
itself on a small network (fast), the settings and errors around it, and (slow) the archive
builder refusing a trunk that misses the bound."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lookalike_handler import quantize
from lookalike_handler.backbones import get_backbone
from lookalike_handler.embedder import Embedder
from lookalike_handler.errors import ConfigError
from lookalike_handler.precision import cpu_has_bf16, int8_chosen, resolve_precision
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.wire import encode_vector
from torch import nn

from lookalike.cli.main import main
from lookalike.serving import int8 as build


def test_the_bound_holds_for_the_same_vectors_and_names_what_noise_breaks():
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(60, 32, generator=generator)
    same = quantize.agreement(vectors, vectors.clone())
    assert same["cosine_min"] == pytest.approx(1.0, abs=1e-6) and same["overlap"] == 1.0
    assert quantize.misses(same) == []
    noisy = quantize.agreement(vectors, vectors + 0.5 * torch.randn(60, 32, generator=generator))
    assert noisy["cosine_min"] < quantize.MIN_COSINE and noisy["overlap"] < quantize.MIN_OVERLAP
    problems = quantize.misses(noisy)
    assert len(problems) == 2 and "least per-image cosine" in problems[0] and "top-10 overlap" in problems[1]


def test_a_small_network_quantizes_to_int8_torchscript_close_to_fp32():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()  # fmt: skip
    calibration = [torch.randn(4, 3, 32, 32) for _ in range(8)]
    trunk = quantize.int8(net, calibration)
    assert isinstance(trunk, torch.jit.ScriptModule)
    assert any("quantized" in node.kind() for node in trunk.graph.nodes())  # real int8 kernels, not fp32
    probe = torch.randn(16, 3, 32, 32)
    with torch.inference_mode():
        figures = quantize.agreement(net(probe), trunk(probe))
    assert figures["cosine_min"] > 0.98
    with pytest.raises(ValueError, match="calibration"):
        quantize.int8(net, [])


AMX_VNNI = {"avx512f", "amx_bf16", "amx_int8", "avx512_vnni"}
BF16_NO_VNNI = {"avx512f", "avx512_bf16"}
CHOSEN = {"chosen": True, "cosine_min": 0.999, "race": {"bf16": 50.0, "int8": 90.0}}


def test_auto_runs_int8_only_where_the_archive_chose_it_and_the_cpu_has_int8_instructions():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu, AMX_VNNI, int8_record=CHOSEN) == "int8"
    assert resolve_precision("auto", cpu, BF16_NO_VNNI, int8_record=CHOSEN) == "bf16"  # no VNNI: no int8 win
    assert resolve_precision("auto", cpu, {"avx2", "avx_vnni"}, int8_record=CHOSEN) == "int8"
    assert resolve_precision("auto", cpu, AMX_VNNI, int8_record={**CHOSEN, "chosen": False}) == "bf16"
    assert resolve_precision("auto", cpu, AMX_VNNI, int8_record=None) == "bf16"  # no trunk in the archive
    assert resolve_precision("auto", cuda, AMX_VNNI, int8_record=CHOSEN) == "bf16"  # int8 is for CPUs
    assert resolve_precision("fp32", cpu, AMX_VNNI, int8_record=CHOSEN) == "fp32"  # a named precision wins
    assert not int8_chosen(CHOSEN, cpu, {"avx2"})


def test_the_int8_record_counts_only_beside_its_trunk(tmp_path):
    (tmp_path / quantize.INT8_RECORD).write_text('{"chosen": true, "cosine_mean": 0.9996, "cosine_min": 0.999}')
    assert quantize.int8_record(str(tmp_path)) is None  # a record without int8.pt: nothing to run
    (tmp_path / quantize.INT8_FILE).write_bytes(b"trunk")
    record = quantize.int8_record(str(tmp_path))
    assert record is not None and record["chosen"] is True
    assert "chosen when built" in quantize.int8_summary(record)
    (tmp_path / quantize.INT8_RECORD).write_text("not json")
    assert quantize.int8_record(str(tmp_path)) is None


def test_the_answer_says_which_precision_ran():
    doc = json.loads(encode_vector(np.ones(4, dtype=np.float32), "resnet50", precision="int8"))
    assert doc["precision"] == "int8" and doc["dimension"] == 4
    assert "precision" not in json.loads(encode_vector(np.ones(4, dtype=np.float32), "resnet50"))


def test_int8_is_for_cpus_without_a_head_and_needs_the_archives_trunk(tmp_path):
    assert resolve_precision("int8", torch.device("cpu")) == "int8"
    with pytest.raises(ConfigError, match="for CPUs"):
        resolve_precision("int8", torch.device("cuda"))
    with pytest.raises(ConfigError, match="head"):
        HandlerSettings(precision="int8", head="head.pt").validate()
    settings = HandlerSettings(backbone="resnet50", precision="int8", weights="random")
    with pytest.raises(ConfigError, match="lookalike mar --precision int8"):
        Embedder.load(settings, None, "cpu", model_dir=str(tmp_path))


@pytest.mark.slow
def test_an_int8_archive_that_misses_the_bound_is_refused_with_its_figures(tmp_path, capsys):
    """EfficientNet-Lite0 (its real weights) quantized per tensor loses its answers (cosine ~0.65 to
    fp32): `lookalike mar --precision int8` says so with the figures and writes no archive."""
    code = main(["mar", "--model", "efficientnet_lite0", "--precision", "int8", "--store", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not keep fp32's answers" in err and "least per-image cosine to fp32" in err, err
    assert not list(tmp_path.glob("*.mar"))


def test_the_copy_protocols_check_catches_a_trunk_that_loses_copies(photos):
    """lookalike.serving.int8's copy check, on a small network and six photos (the real trunks are
    checked when archives are built): the same network keeps every R@1; one whose vectors are
    mostly noise loses copies, and the miss names the protocol."""

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten()).eval()

    noise = torch.Generator().manual_seed(1)

    class Noisy(nn.Module):  # a different draw of noise at every call, ten times the signal
        def forward(self, x):
            out = net(x)
            return out + 10 * out.std() * torch.randn(out.shape, generator=noise)

    images = [photos[name] for name in ("coffee", "astronaut", "rocket", "chelsea", "china", "flower")]
    spec = get_backbone("resnet50").spec
    same = build.copy_recall(net, net, images, spec)
    assert set(same) == {"near-duplicate", "heavy-crop", "reframe", "recolour", "screenshot", "captioned",
                         "rotated", "angled", "pasted"}  # fmt: skip
    assert all(r["fp32"] == r["int8"] for r in same.values()) and build.copy_misses(same) == []
    noisy = build.copy_recall(net, Noisy().eval(), images, spec)
    misses = build.copy_misses(noisy)
    assert misses and all("copy protocol" in miss and "lower" in miss for miss in misses)


def test_the_race_times_the_workers_whole_path_at_both_precisions(store, photos, tmp_path):
    """The build-time race, on the int8 trunk of the session's int8 archive (random weights)."""
    import zipfile

    from tests.conftest import INT8_MODEL

    with zipfile.ZipFile(store / f"{INT8_MODEL}.mar") as mar:
        (tmp_path / quantize.INT8_FILE).write_bytes(mar.read(quantize.INT8_FILE))
    rates = build.race("resnet50", None, tmp_path, list(photos.values())[:8], seconds=1.0)
    assert set(rates) == {"bf16" if cpu_has_bf16() else "fp32", "int8"} and min(rates.values()) > 0
