"""De-duplication measured: pair precision and recall of `lookalike dedup`'s groups, with and
without region scores.

The collection: the photos, and one seeded copy of each per kind of copy. Two documents are a true
pair when they show the same photo: an original and its copies, two copies of one original, and a
collage and the photo it was pasted into (it shows both). The groups come from the real code
(`dedup.find_groups`) over a real embedded index per region scheme: with `none` a score is whole
image against whole image; with a scheme it is what search scores, a document's whole vector
against the other's best vector (whole or region). A group of n documents predicts its n(n-1)/2
pairs. Per threshold: precision, recall, F1, and precision and recall per kind of copy; means over
seeds. Same-scene negatives: photos that show one scene twice (lookalike.photos.SAME_SCENE) are
not a true pair, nor are their copies; the scores say how many such pairs were grouped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from lookalike_handler.wire import decode_regions, decode_vector

from lookalike import dedup
from lookalike.copies import collages, copies
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.serving.client import ModelClient
from lookalike.verify.features import Features, extract
from lookalike.verify.store import SqliteFeatures

Pair = tuple[str, str]


def collection(images: list[bytes], kinds: list[str], seed: int) -> list[tuple[str, bytes, frozenset[int]]]:
    """(id, bytes, the originals it shows) for every photo and one copy of each per kind."""
    rng = np.random.default_rng(seed)
    items = [(f"original-{i}", data, frozenset([i])) for i, data in enumerate(images)]
    for kind in kinds:
        if kind == "pasted":
            made = [(collage, frozenset([i, host])) for i, (collage, host) in enumerate(collages(images, rng))]
        else:
            made = [(copy, frozenset([i])) for i, copy in enumerate(copies(images, kind, rng))]
        items += [(f"{kind}-{i}", data, shows) for i, (data, shows) in enumerate(made)]
    return items


def pair(a: str, b: str) -> Pair:
    """The pair of two ids, the same whichever comes first."""
    return (a, b) if a <= b else (b, a)


def true_pairs(items: list[tuple[str, bytes, frozenset[int]]]) -> set[Pair]:
    return {pair(a[0], b[0]) for a, b in combinations(items, 2) if a[2] & b[2]}


def group_pairs(groups: list[dict]) -> set[Pair]:
    pairs: set[Pair] = set()
    for group in groups:
        ids = [group["keep"]["id"], *(dup["id"] for dup in group["duplicates"])]
        pairs |= {pair(a, b) for a, b in combinations(ids, 2)}
    return pairs


def scene_pairs(items: list[tuple[str, bytes, frozenset[int]]], scenes: list[tuple[int, int]]) -> set[Pair]:
    """Pairs of documents that show two shots of one scene (and not one photo): same-scene negatives."""
    linked = {frozenset(scene) for scene in scenes}
    return {pair(a[0], b[0]) for a, b in combinations(items, 2)
            if not a[2] & b[2] and any(frozenset((i, j)) in linked for i in a[2] for j in b[2])}  # fmt: skip


def involving(pairs: set[Pair], kind: str) -> set[Pair]:
    """The pairs with a copy of `kind` on one side."""
    return {p for p in pairs if any(side.startswith(f"{kind}-") for side in p)}


def pair_scores(found: set[Pair], truth: set[Pair], kinds: list[str], scenes: Set[Pair] = frozenset()) -> dict:
    hits = found & truth
    precision = len(hits) / len(found) if found else 1.0
    recall = len(hits) / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_kind, precision_by_kind = {}, {}
    for kind in kinds:
        wanted, made = involving(truth, kind), involving(found, kind)
        by_kind[kind] = len(wanted & found) / len(wanted) if wanted else 0.0
        precision_by_kind[kind] = len(made & truth) / len(made) if made else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "pairs_found": len(found),
            "true_pairs": len(truth), "recall_by_kind": by_kind, "precision_by_kind": precision_by_kind,
            "scene_pairs": len(scenes), "scene_pairs_grouped": len(found & scenes)}  # fmt: skip


def embed_docs(client: ModelClient, items: list[tuple[str, bytes, frozenset[int]]], scheme: str,
               workers: int = 4) -> list[Doc]:  # fmt: skip
    """Each item as the document ingest would make of it under `scheme`."""
    model = client.info().model

    def one(item: tuple[str, bytes, frozenset[int]]) -> Doc:
        doc_id, data, _ = item
        answer = client.embed_response(data, regions=scheme)
        return Doc.of_image(doc_id, decode_vector(answer), model, data, None, None, [], scheme, decode_regions(answer))

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, items))


def groups_per_threshold(docs: list[Doc], scheme: str, thresholds: list[float], neighbours: int,
                         features: dict[str, Features] | None = None) -> dict:  # fmt: skip
    """`dedup.find_groups` at each threshold over a fresh embedded index holding `docs`; with
    `features` (id -> Features), `dedup.find_verified` with each threshold as the candidates' cosine."""
    with tempfile.TemporaryDirectory(prefix="lookalike-dedup-eval-") as tmp:
        index = EmbeddedIndex(Path(tmp), "dedup-eval", docs[0].model, len(docs[0].vector), regions=scheme)
        try:
            index.upsert(docs)
            if features is None:
                return {t: dedup.find_groups(index, t, neighbours, by_regions=scheme != "none") for t in thresholds}
            store = SqliteFeatures(Path(tmp) / "features", "dedup-eval", 1)
            for doc_id, found in features.items():
                store.put(doc_id, found)
            try:
                return {t: dedup.find_verified(index, store, t, neighbours)[0] for t in thresholds}
            finally:
                store.close()
        finally:
            index.close()


def evaluate(client: ModelClient, images: list[bytes], kinds: list[str], schemes: list[str], seeds: list[int],
             thresholds: list[float], neighbours: int = 10, verified: bool = False,
             scenes: Sequence[tuple[int, int]] = ()) -> dict:  # fmt: skip
    """{scheme: {threshold: scores}}: means over seeds (per-kind recall too). `verified`: groups by
    `dedup.find_verified` (schemes named "<scheme> verified"), each threshold the candidates' cosine."""
    label = {scheme: f"{scheme} verified" if verified else scheme for scheme in schemes}
    runs: dict[str, dict[float, list[dict]]] = {label[s]: {t: [] for t in thresholds} for s in schemes}
    for seed in seeds:
        items = collection(images, kinds, seed)
        truth, negatives = true_pairs(items), scene_pairs(items, list(scenes))
        features = {doc_id: extract(data) for doc_id, data, _ in items} if verified else None
        for scheme in schemes:
            docs = embed_docs(client, items, scheme)
            for threshold, groups in groups_per_threshold(docs, scheme, thresholds, neighbours, features).items():
                runs[label[scheme]][threshold].append(pair_scores(group_pairs(groups), truth, kinds, negatives))
    return {scheme: {threshold: mean_scores(scores) for threshold, scores in by_threshold.items()}
            for scheme, by_threshold in runs.items()}  # fmt: skip


def mean_scores(runs: list[dict]) -> dict:
    keys = ("precision", "recall", "f1", "pairs_found", "true_pairs", "scene_pairs", "scene_pairs_grouped")
    out: dict[str, Any] = {key: float(np.mean([run[key] for run in runs])) for key in keys}
    for by in ("recall_by_kind", "precision_by_kind"):
        out[by] = {kind: float(np.mean([run[by][kind] for run in runs])) for kind in runs[0][by]}
    return out


def table(results: dict, kinds: list[str]) -> str:
    """One row per scheme and threshold; per kind of copy `precision/recall` of the pairs it is in;
    `scene`: same-scene pairs grouped as copies, of all such pairs."""
    head = f"{'scheme':<15} {'cosine >=':>9} {'precision':>9} {'recall':>7} {'F1':>6} {'pairs':>6} {'scene':>7}"
    lines = [head + "".join(f" {kind[:13]:>13}" for kind in kinds)]
    for scheme, by_threshold in results.items():
        for threshold, s in by_threshold.items():
            lines.append(
                f"{scheme:<15} {threshold:>9.2f} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} "
                f"{s['pairs_found']:>6.0f} {s['scene_pairs_grouped']:>3.0f}/{s['scene_pairs']:<3.0f}"
                + "".join(f"   {s['precision_by_kind'][k]:.2f}/{s['recall_by_kind'][k]:.2f}" for k in kinds)
            )
    return "\n".join(lines)
