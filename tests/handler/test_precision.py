"""Precision is chosen from detected capabilities (simulated here), never assumed."""

from __future__ import annotations

import pytest
import torch
from lookalike_handler.embedder import worker_device
from lookalike_handler.errors import ConfigError
from lookalike_handler.precision import cpu_flags, cpu_has_bf16, resolve_precision

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)
AMX = {"avx2", "avx512f", "amx_bf16", "amx_tile"}
AVX2_ONLY = {"sse4_2", "avx", "avx2"}


def test_auto_picks_bf16_on_amx_and_fp32_without_it():
    assert resolve_precision("auto", CPU, AMX) == "bf16"
    assert resolve_precision("auto", CPU, {"avx512_bf16"}) == "bf16"
    assert resolve_precision("auto", CPU, AVX2_ONLY) == "fp32"
    assert resolve_precision("auto", CUDA, AVX2_ONLY) == "bf16"


def test_fp32_is_always_available():
    assert resolve_precision("fp32", CPU, AVX2_ONLY) == "fp32"


def test_explicit_bf16_without_support_is_refused_with_advice():
    with pytest.raises(ConfigError, match="AMX"):
        resolve_precision("bf16", CPU, AVX2_ONLY)
    assert resolve_precision("bf16", CPU, AMX) == "bf16"


def test_fp16_is_gpu_only():
    with pytest.raises(ConfigError, match="GPU"):
        resolve_precision("fp16", CPU, AMX)
    assert resolve_precision("fp16", CUDA) == "fp16"


def test_cpu_flags_parse(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu avx2 amx_bf16 amx_tile\n")
    assert cpu_has_bf16(cpu_flags(str(info)))
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_worker_device_falls_back_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker_device(0) == CPU
    assert worker_device(None) == CPU
