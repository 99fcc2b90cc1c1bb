"""`lookalike eval --verifier`: the verifier's thresholds chosen on one half of the bundled photos
and reported on the other, which no threshold was chosen on (lookalike.photos.halves: by shoot, so
two shots of one room never fall on both sides).

Pairs, each judged from local features alone (lookalike.verify, as search and `dedup` judge them):
- should join (copy or part): each photo's seeded copy of every kind against the photo; a collage
  also against the photo it was pasted into (most of its pixels);
- must not join: each photo against the other shots of its scene, each copy against every other
  photo of its half (other shots of its scene among them).

Each threshold is swept alone, the others at their defaults. Chosen on the tune half: the value
with the most recall of the pairs that should join, among those that join no other shot of a scene
and keep precision at 0.99 or more (a tie keeps the default); F1 alone chose values that joined
other shots of a scene. The held half is then judged at
the defaults and at every chosen value together. A pair that the screen finds nothing in common
in is judged once: no swept threshold acts before the screen.

    lookalike eval --verifier --seeds 0,1                # chosen on the tune half, reported on the held
    lookalike eval --verifier --seeds 0,1 --half held    # the other way round
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lookalike.copies import ALL_KINDS
from lookalike.photos import all_photos, halves, shoot
from lookalike.progress import Progress
from lookalike.relevance import dedup_eval
from lookalike.verify import blas, verdict
from lookalike.verify.features import Features, extract

# The thresholds that decide whether a pair joins, and the values tried (the default among them).
# COPY_COVER, PLAIN_SURROUND and CONTINUED only tell a copy from a part (both join);
# FLAT_COPY_COSINE needs the model's cosine: none of these is swept here.
GRID: dict[str, tuple[float, ...]] = {
    "MIN_INLIERS": (10, 12, 15, 18, 22),
    "OVERLAY_SHARE": (0.07, 0.1, 0.13, 0.16, 0.2),
    "COPY_CORRELATION": (0.5, 0.55, 0.6, 0.65, 0.7),
    "MATCHED_CORRELATION": (0.8, 0.85, 0.9, 0.95),
    "LEAST_CORRELATION": (0.1, 0.2, 0.3, 0.4),
    "MAX_OFFSET": (1.0, 1.2, 1.4, 1.7, 2.0, 3.0),
    "MIN_ANGLED_INLIERS": (20, 25, 30, 40),
    "ANGLED_CORRELATION": (0.6, 0.65, 0.7, 0.75, 0.8),
}
MIN_PRECISION = 0.99  # a value chosen keeps pair precision at least this on the tune half (issue's target)
NOTHING = "nothing in common"  # the screen's reason: no threshold swept here can change it


@dataclass
class Pair:
    a: Features
    b: Features
    joins: bool  # what the verdict should say: a copy or part of b
    kind: str  # the copy's kind, "scene" (another shot of one scene) or "other"


def pairs(photos: dict[str, bytes], seeds: list[int], progress: bool = False) -> list[Pair]:
    """The half's pairs (module docstring), features extracted on two threads."""
    names = list(photos)
    images = list(photos.values())
    made = []  # (kind, photo, copy bytes, photos it joins): the dedup eval's collection, copies only
    for seed in seeds:
        for item, data, joins in dedup_eval.collection(images, list(ALL_KINDS), seed)[len(images) :]:
            kind, _, at = item.rpartition("-")
            made.append((kind, int(at), data, joins))
    with ThreadPoolExecutor(2) as pool, Progress("features", len(images) + len(made), enabled=progress) as shown:

        def extracted(data: bytes) -> Features:
            found = extract(data)
            shown.update(1)
            return found

        originals = list(pool.map(extracted, images))
        copied = list(pool.map(extracted, [data for _, _, data, _ in made]))
    out = []
    for i in range(len(names)):
        out += [Pair(originals[i], originals[j], False, "scene") for j in range(len(names))
                if j != i and shoot(names[j]) == shoot(names[i])]  # fmt: skip
    for (kind, i, _, joins), features in zip(made, copied, strict=True):
        for j in range(len(names)):
            scene = shoot(names[j]) == shoot(names[i]) and j != i
            out.append(Pair(features, originals[j], j in joins, kind if j in joins else "scene" if scene else "other"))
    return out


@contextmanager
def thresholds(values: dict[str, float]) -> Iterator[None]:
    """The verifier's module thresholds set to `values` while inside (one sweep at a time)."""
    before = {name: getattr(verdict, name) for name in values}
    for name, value in values.items():
        setattr(verdict, name, type(before[name])(value))
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(verdict, name, value)


def judged(half: list[Pair], values: dict[str, float], pool: ThreadPoolExecutor) -> list[bool]:
    """Whether each pair joins with the thresholds at `values` (the rest at their defaults)."""
    with thresholds(values):
        return list(pool.map(lambda pair: verdict.verify(pair.a, pair.b).joins, half))


def scores(half: list[Pair], joined: list[bool]) -> dict:
    """Pair precision, recall and F1 of the joins; the other shots of a scene and unrelated photos
    joined; recall by kind of copy."""
    said = [pair for pair, joins in zip(half, joined, strict=True) if joins]
    right = sum(pair.joins for pair in said)
    found = {id(pair) for pair in said}
    should = [pair for pair in half if pair.joins]
    precision, recall = right / max(len(said), 1), right / max(len(should), 1)

    def recall_of(kind: str) -> float:
        of_kind = [pair for pair in should if pair.kind == kind]
        return round(sum(id(pair) in found for pair in of_kind) / max(len(of_kind), 1), 4)

    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4), "joined": len(said),
            "scene_joined": sum(pair.kind == "scene" for pair in said),
            "other_joined": sum(pair.kind == "other" for pair in said),
            "by_kind": {kind: recall_of(kind) for kind in ALL_KINDS}}  # fmt: skip


def in_reach(half: list[Pair], pool: ThreadPoolExecutor) -> list[Pair]:
    """The pairs a swept threshold can change: those the screen does not stop (and the joins, all kept)."""
    reasons = list(pool.map(lambda pair: verdict.verify(pair.a, pair.b).reason, half))
    return [pair for pair, reason in zip(half, reasons, strict=True) if pair.joins or not reason.startswith(NOTHING)]


def allowed(row: dict) -> bool:
    """The targets a value must keep on the tune half: no other shot of a scene joined, precision >= 0.99."""
    return row["scene_joined"] == 0 and row["precision"] >= MIN_PRECISION


def choose(tune: list[Pair], pool: ThreadPoolExecutor, progress: bool = False) -> dict[str, dict]:
    """For each threshold: the tune half's scores at every value tried, and the value chosen: the
    most recall among the values `allowed` (a tie keeps the default, else the nearer value; where
    no value is allowed, the default)."""
    out = {}
    with Progress("thresholds", sum(map(len, GRID.values())), unit="value", enabled=progress) as shown:
        for name, values in GRID.items():
            tried = {}
            for value in values:
                tried[value] = scores(tune, judged(tune, {name: value}, pool))
                shown.update(1)
            out[name] = picked(getattr(verdict, name), tried)
    return out


def picked(default: float, tried: dict[float, dict]) -> dict:
    """The value chosen of those `tried` (value -> scores on the tune half), and the figures."""
    fine = [value for value in tried if allowed(tried[value])] or [default]
    best = max(tried[value]["recall"] for value in fine)
    tied = [value for value in fine if tried[value]["recall"] == best]
    chosen = default if default in tied else min(tied, key=lambda value: abs(value - default))
    return {"default": default, "chosen": chosen, "tried": tried}


def table(chosen: dict[str, dict], rows: dict[str, dict]) -> str:
    """The thresholds chosen (with the tune half's figures at each value), then the halves' scores."""
    lines = [f"\n{'threshold':<20} {'default':>8} {'chosen on tune':>15}   tune recall / precision / scene joined"]
    for name, row in chosen.items():
        tried = ", ".join(f"{value:g}: {got['recall']:.3f}/{got['precision']:.3f}/{got['scene_joined']}"
                          for value, got in row["tried"].items())  # fmt: skip
        lines.append(f"{name:<20} {row['default']:>8g} {row['chosen']:>15g}   {tried}")
    lines.append(f"\n{'half':<6} {'thresholds':<10} {'precision':>9} {'recall':>7} {'F1':>7} {'scene':>6} "
                 f"{'other':>6}  recall by kind")  # fmt: skip
    for key, got in rows.items():
        half, values = key.split("_")
        kinds = ", ".join(f"{kind} {value:.3f}" for kind, value in got["by_kind"].items())
        lines.append(f"{half:<6} {values:<10} {got['precision']:>9.4f} {got['recall']:>7.4f} {got['f1']:>7.4f} "
                     f"{got['scene_joined']:>6} {got['other_joined']:>6}  {kinds}")  # fmt: skip
    lines.append("scene / other: pairs joined that are other shots of one scene / unrelated photos")
    return "\n".join(lines)


def main(seeds: list[int], out: Path, swapped: bool = False) -> int:
    """Choose on the tune half and report on the held half (`swapped`: the other way round)."""
    blas.one_thread_each()
    tune_photos, held_photos = halves(all_photos())
    if swapped:
        tune_photos, held_photos = held_photos, tune_photos
    print(f"Pairs of the half thresholds are chosen on ({len(tune_photos)} photos, first of "
          f"lookalike.photos.halves{' swapped' if swapped else ''}) and of the half they are reported on "
          f"({len(held_photos)}), copies of every kind, seeds {','.join(map(str, seeds))}", flush=True)  # fmt: skip
    tune_all, held_all = pairs(tune_photos, seeds, progress=True), pairs(held_photos, seeds, progress=True)
    with ThreadPoolExecutor(2) as pool:
        tune, held = in_reach(tune_all, pool), in_reach(held_all, pool)
        chosen = choose(tune, pool, progress=True)
        picked = {name: row["chosen"] for name, row in chosen.items()}
        rows = {"tune_default": scores(tune, judged(tune, {}, pool)),
                "held_default": scores(held, judged(held, {}, pool)),
                "held_chosen": scores(held, judged(held, picked, pool))}  # fmt: skip
    print(table(chosen, rows))
    report = {"seeds": seeds, "tuned_on": "held" if swapped else "tune", "thresholds": chosen,
              "pairs": {"tune": len(tune_all), "held": len(held_all)}, **rows}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float))
    print(f"JSON: {out}")
    return 0
