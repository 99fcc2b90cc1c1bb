"""Which precision a worker runs at: detected from the hardware, never assumed.

bf16 pays on CPUs with AMX or AVX512-BF16 and on CUDA; fp16 only on CUDA. `auto`
picks the fastest the hardware supports and falls back to fp32. int8 runs on CPUs only, from the
archive's quantized trunk: `auto` picks it when the archive's int8 record (int8.json, written when
it was built) says the trunk met the bound and beat the default there, and this CPU has the
int8 dot-product instructions (VNNI or AMX-INT8) that made it win.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

from .errors import ConfigError

_BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
_INT8_CPU_FLAGS = frozenset({"amx_int8", "avx512_vnni", "avx_vnni"})
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where unknown, e.g. not Linux)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16(flags: Iterable[str] | None = None) -> bool:
    return bool(_BF16_CPU_FLAGS & frozenset(cpu_flags() if flags is None else flags))


def cpu_has_int8(flags: Iterable[str] | None = None) -> bool:
    return bool(_INT8_CPU_FLAGS & frozenset(cpu_flags() if flags is None else flags))


def int8_chosen(record: dict | None, device: torch.device, flags: Iterable[str] | None = None) -> bool:
    """Whether `auto` runs the archive's int8 trunk: its record (int8.json) says it met the bound
    and won when the archive was built, and this device is a CPU with int8 instructions."""
    return device.type == "cpu" and bool(record and record.get("chosen")) and cpu_has_int8(flags)


def resolve_precision(requested: str, device: torch.device, flags: Iterable[str] | None = None,
                      int8_record: dict | None = None) -> str:  # fmt: skip
    """The precision to run: `requested` if the hardware supports it; `auto` -> best supported
    (int8 where the archive's int8 record chose it, see int8_chosen)."""
    cuda = device.type == "cuda"
    bf16_ok = cuda or cpu_has_bf16(flags)
    if requested == "auto":
        if int8_chosen(int8_record, device, flags):
            return "int8"
        return "bf16" if bf16_ok else "fp32"
    if requested == "bf16" and not bf16_ok:
        raise ConfigError(
            "precision bf16 needs a GPU or a CPU with AMX or AVX512-BF16, and this CPU has neither; "
            "use precision fp32 or auto"
        )
    if requested == "int8" and cuda:
        raise ConfigError("precision int8 is for CPUs (x86 int8 kernels); on a GPU use bf16, fp16 or auto")
    if requested == "fp16" and not cuda:
        raise ConfigError("precision fp16 is for GPUs only; use fp32, bf16 or auto on a CPU")
    return requested


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for `precision` (a no-op for fp32)."""
    if precision in ("fp32", "int8"):  # int8: the quantized trunk's own kernels
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
