"""The int8 trunk of an archive, made when it is built (`lookalike mar --precision int8`, or tried
by `lookalike mar` at precision auto for a backbone marked int8_auto): calibrated on augmented views
of one half of the bundled photos (lookalike.photos.halves: by shoot), then held to fp32's answers
on the other half, which calibration never saw
(lookalike_handler.quantize: per-image cosine >= 0.99, top-10 overlap >= 0.95) and on copies of them:
each copy protocol of `lookalike eval` (lookalike.copies, seeds 0 and 1: 52 queries
per kind) must find the original at rank 1 within MAX_COPY_DROP of fp32's R@1 (both trunks see the
same pixels: exact decoding, the centre crop). Asked for by name, a trunk that misses the bound is
refused with its figures, and no archive is written.

Then a race on this CPU: the worker's whole path (decode + preprocess + model, batch 8) at the
default precision (bf16 where the CPU has it, else fp32) against int8. The record (int8.json, in
the archive beside int8.pt) keeps the bound's figures, the race and the choice: int8 is `chosen`
when it met the bound and ran at least MIN_GAIN x the default; precision auto then runs it on a CPU
with int8 instructions (lookalike_handler.precision.int8_chosen). With seeded random weights the
neighbour order means little (every vector is alike): the bound is checked and recorded all the
same, and an explicit `--precision int8` archive is still written (plumbing and speed only).
What int8 gains, and why Lite0's trunk is refused: docs/constants.md, docs/performance.md.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lookalike_handler import backbones, quantize
from lookalike_handler.embedder import Embedder
from lookalike_handler.precision import cpu_has_int8, resolve_precision
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.transforms import FIT, normalize_batch
from PIL import Image, ImageEnhance, ImageOps

from lookalike.copies import ALL_KINDS, copies
from lookalike.errors import LookalikeError
from lookalike.photos import halves, interior_photos, subject_photos

BATCH = 8
RACE_SECONDS = 4.0  # per precision, after a warm-up
MIN_GAIN = 1.1  # int8 is chosen only when it runs at least this many times the default's rate
COPY_SEEDS = (0, 1)
MAX_COPY_DROP = 0.01  # per copy protocol: int8's R@1 may fall at most this far below fp32's


class BoundMissed(LookalikeError):
    """The int8 trunk's vectors are not close enough to fp32's to stand in for them."""


def views(img: Image.Image) -> list[Image.Image]:
    """Augmented views for calibration: mirrored, an 80 % centre crop, brighter, paler."""
    w, h = img.size
    crop = img.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    return [ImageOps.mirror(img), crop, ImageEnhance.Brightness(img).enhance(1.3), ImageEnhance.Color(img).enhance(0.5)]


def batches(images: list[Image.Image], spec) -> list[torch.Tensor]:
    pixels = torch.stack([FIT["crop"](img, spec) for img in images])
    normalised = normalize_batch(pixels, spec)
    return [normalised[start : start + BATCH] for start in range(0, len(normalised), BATCH)]


def copy_recall(fp32: torch.nn.Module, trunk: torch.nn.Module, images: list[bytes], spec) -> dict[str, dict]:
    """R@1 per copy protocol (seeds COPY_SEEDS): each copy queries the originals, through fp32 and int8
    (the same pixels for both)."""
    models = {"fp32": fp32, "int8": trunk}

    def embed(data: list[bytes]) -> dict[str, torch.Tensor]:
        held = batches([Image.open(io.BytesIO(item)).convert("RGB") for item in data], spec)
        return {label: F.normalize(torch.cat([model(batch) for batch in held]).float(), dim=1)
                for label, model in models.items()}  # fmt: skip

    out = {}
    with torch.inference_mode():
        galleries = embed(images)
        for kind in ALL_KINDS:
            found = dict.fromkeys(models, 0)
            for seed in COPY_SEEDS:
                queries = embed(copies(images, kind, np.random.default_rng(seed)))
                for label in models:
                    best = (queries[label] @ galleries[label].T).argmax(dim=1)
                    found[label] += int((best == torch.arange(len(images))).sum())
            out[kind] = {label: round(count / (len(images) * len(COPY_SEEDS)), 4) for label, count in found.items()}
    return out


def copy_misses(recall: dict[str, dict]) -> list[str]:
    return [f"copy protocol {kind}: R@1 {r['fp32']:.3f} at fp32, {r['int8']:.3f} at int8 "
            f"({r['int8'] - r['fp32']:+.3f}, more than {MAX_COPY_DROP} lower)"
            for kind, r in recall.items() if r["fp32"] - r["int8"] > MAX_COPY_DROP + 1e-9]  # fmt: skip


def default_precision() -> str:
    """What a worker on this CPU runs at `auto` without an int8 trunk: bf16 where it has it, else fp32."""
    return resolve_precision("auto", torch.device("cpu"))


def race(model: str, weights_path: str | None, model_dir: Path, images: list[bytes],
         seconds: float = RACE_SECONDS) -> dict[str, float]:  # fmt: skip
    """img/s of the worker's whole path, batch BATCH in this process, at the default precision and at
    int8 (the trunk in `model_dir`), on this CPU."""
    rates = {}
    for precision in (default_precision(), "int8"):
        settings = HandlerSettings(backbone=model, weights="random" if weights_path is None else "file",
                                   precision=precision)  # fmt: skip
        embedder = Embedder.load(settings, weights_path, "cpu", model_dir=str(model_dir))
        chunks = [[images[(start + k) % len(images)] for k in range(BATCH)] for start in range(0, len(images), BATCH)]
        for chunk in chunks[:2]:  # warm-up: oneDNN builds its kernels for the shape on first use
            embedder.embed_bytes(chunk)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            embedder.embed_bytes(chunks[(done // BATCH) % len(chunks)])
            done += BATCH
        rates[precision] = done / (time.perf_counter() - started)
    return rates


def make(model: str, weights_path: str | None, out: Path, seed: int = 0, enforce: bool = True) -> dict:
    """Write the int8 trunk of `model` (weights from `weights_path`, else seeded random weights, as
    the worker builds them) to `out` and its record beside it (int8.json); return the record.
    `enforce`: a trunk that misses the bound raises BoundMissed and writes nothing (else the record
    says so and the trunk is not chosen)."""
    backbone = backbones.get_backbone(model)
    if weights_path is None:
        torch.manual_seed(seed)
    fp32 = backbone.build(weights_path)
    calibration, bundled = halves({**subject_photos(), **interior_photos()})
    seen = [Image.open(io.BytesIO(data)).convert("RGB") for data in calibration.values()]
    trunk = quantize.int8(fp32, batches([view for img in seen for view in views(img)], backbone.spec))
    photos = [Image.open(io.BytesIO(data)).convert("RGB") for data in bundled.values()]
    with torch.inference_mode():
        held = batches(photos, backbone.spec)
        reference = torch.cat([fp32(batch) for batch in held])
        got = torch.cat([trunk(batch) for batch in held])
    figures: dict = quantize.agreement(reference, got)
    figures["random_weights"] = weights_path is None
    problems = quantize.misses(figures)
    if not problems:  # the copies take a minute or two: a trunk that missed on the photos is decided
        figures["copies_r1"] = copy_recall(fp32, trunk, list(bundled.values()), backbone.spec)
        problems += copy_misses(figures["copies_r1"])
    if problems and enforce and weights_path is not None:
        raise BoundMissed(f"int8 {model} does not keep fp32's answers on the {len(photos)} bundled photos held out "
                          "from calibration and their copies: "
                          + "; ".join(problems) + ". No archive written; use --precision bf16 or fp32.")  # fmt: skip
    torch.jit.save(trunk, str(out))
    default = default_precision()
    # a trunk that missed the bound cannot be chosen: no race for it
    rates = {} if problems else race(model, weights_path, out.parent, list(bundled.values()))
    record = {key: round(value, 5) if isinstance(value, float) else value for key, value in figures.items()}
    record.update(
        bound_met=not problems, misses=problems, race={name: round(rate, 1) for name, rate in rates.items()},
        default_precision=default, built_on_int8_cpu=cpu_has_int8(),
        chosen=not problems and rates["int8"] >= MIN_GAIN * rates[default] and cpu_has_int8(),
    )  # fmt: skip
    out.with_name(quantize.INT8_RECORD).write_text(json.dumps(record, indent=2))
    return record
