"""int8 on the CPU: static post-training quantization, done when the archive is built, and the
bound that decides whether its answers may stand in for fp32's.

    quantized = int8(model, calibration)       # an fp32 trunk + batches of normalised pixels
    figures = agreement(fp32_vectors, int8_vectors)
    problems = misses(figures)                  # [] when int8 keeps fp32's answers

The flow is torch.ao's FX graph mode with the x86 engine (fbgemm + oneDNN kernels): it runs with
our torch (2.14) and gives real int8 kernels in eager mode, so the worker loads a TorchScript file
and runs it, nothing compiled at start. torchao's PT2E flow is the maintained successor, but its
x86 path lowers through torch.compile (Inductor): a C++ toolchain and a compile in every worker.
The result is traced and frozen to TorchScript (conv + ReLU fused, weights packed: faster than
the eager module, docs/constants.md).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Iterable

import torch
import torch.nn.functional as F

INT8_FILE = "int8.pt"  # the quantized trunk's TorchScript, packed in the archive
INT8_RECORD = "int8.json"  # beside it: the bound's figures, the race against the default, the choice
MIN_COSINE = 0.99  # per image, int8 vector against fp32's: the lowest allowed
MIN_OVERLAP = 0.95  # mean share of each image's 10 nearest (among the photos) that int8 keeps
NEAREST = 10


def int8(model: torch.nn.Module, calibration: Iterable[torch.Tensor]) -> torch.jit.ScriptModule:
    """`model` (fp32, eval) quantized to int8 with activation ranges observed on `calibration`
    (normalised `[N,3,H,W]` batches), as frozen TorchScript."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    batches = list(calibration)
    if not batches:
        raise ValueError("int8 needs calibration images")
    with warnings.catch_warnings():  # the FX flow's deprecation notices and the tracer's, once per build
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("x86"),
                              example_inputs=(batches[0],))  # fmt: skip
        with torch.inference_mode():
            for batch in batches:
                prepared(batch)
        converted = convert_fx(prepared)
        with torch.inference_mode():
            traced = torch.jit.trace(converted, batches[0])
        return torch.jit.freeze(traced.eval())


def agreement(reference: torch.Tensor, got: torch.Tensor, nearest: int = NEAREST) -> dict[str, float]:
    """How well `got` ([N,D], int8's vectors) keeps `reference`'s (fp32's, the same images): the mean
    and least per-image cosine, and the mean share of each image's `nearest` neighbours kept."""
    ref, out = F.normalize(reference.float(), dim=1), F.normalize(got.float(), dim=1)
    cosines = (ref * out).sum(dim=1)
    k = min(nearest, len(ref) - 1)
    kept = 1.0
    if k > 0:
        mask = torch.eye(len(ref), dtype=torch.bool)
        near_ref = (ref @ ref.T).masked_fill(mask, -2.0).topk(k, dim=1).indices
        near_out = (out @ out.T).masked_fill(mask, -2.0).topk(k, dim=1).indices
        kept = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(near_ref, near_out, strict=True))
        kept /= k * len(ref)
    return {"images": float(len(ref)), "cosine_mean": float(cosines.mean()), "cosine_min": float(cosines.min()),
            "overlap": float(kept)}  # fmt: skip


def misses(figures: dict[str, float]) -> list[str]:
    """What of the bound `figures` (agreement()) misses, in words; [] when it holds."""
    out = []
    if figures["cosine_min"] < MIN_COSINE:
        out.append(f"least per-image cosine to fp32 {figures['cosine_min']:.4f} < {MIN_COSINE} "
                   f"(mean {figures['cosine_mean']:.4f})")  # fmt: skip
    if figures["overlap"] < MIN_OVERLAP:
        out.append(f"top-{NEAREST} overlap with fp32 {figures['overlap']:.3f} < {MIN_OVERLAP}")
    return out


def int8_record(model_dir: str | None) -> dict | None:
    """The archive's int8 record (INT8_RECORD), when the archive carries a trunk beside it; else None."""
    folder = model_dir or "."
    if not os.path.isfile(os.path.join(folder, INT8_FILE)):
        return None
    try:
        with open(os.path.join(folder, INT8_RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def int8_summary(record: dict) -> str:
    """The record in a line, for the worker's log."""
    race = record.get("race") or {}
    rates = ", ".join(f"{name} {rate:.1f} img/s" for name, rate in race.items() if isinstance(rate, (int, float)))
    return (
        f"{'chosen' if record.get('chosen') else 'not chosen'} when built; cosine to fp32 mean "
        f"{record.get('cosine_mean', float('nan')):.4f}, least {record.get('cosine_min', float('nan')):.4f}"
        + (f"; {rates}" if rates else "")
    )
