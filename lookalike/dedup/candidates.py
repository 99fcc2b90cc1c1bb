"""The pairs a verified de-duplication judges: each image's nearest neighbours by cosine, and the
images it shares the most visual words with (lookalike.verify.words: a photo pasted small into a
collage is far from it by cosine)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import numpy as np

from lookalike.dedup.judge import Judge
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.progress import Progress
from lookalike.verify import words

VOCABULARY_IMAGES = 1000  # the visual words are drawn from the descriptors of at most this many images
CHUNK = 32  # images whose candidate pairs are judged together (their features: at most 32 x 11 in the cache)


def batched(items, size: int):
    """Lists of `size` items (the last may be shorter), read lazily (itertools.batched is 3.12+)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def candidates(index: VectorIndex, doc: Doc, threshold: float, neighbours: int, by_regions: bool,
               sharing: Sequence[str] = ()) -> list[tuple]:  # fmt: skip
    """The pairs (a, a_source, b, b_source, cosine) to judge for `doc`: its nearest neighbours at
    cosine >= threshold, then the images in `sharing` (by visual words) that are not among them."""
    hits = index.search(doc.vector, neighbours + 1, exclude_ids=[doc.id], min_similarity=threshold,
                        by_regions=by_regions)  # fmt: skip
    pairs = [(doc.id, doc.source, hit.id, hit.metadata.get("source"), hit.similarity) for hit in hits]
    near = {hit.id for hit in hits}
    for other_id in sharing:
        other = index.get(other_id) if other_id not in near else None
        if other is not None:
            pairs.append((doc.id, doc.source, other.id, other.source, float(np.dot(doc.vector, other.vector))))
    return pairs


def shared_words(index: VectorIndex, judge: Judge, pool: ThreadPoolExecutor, progress: bool) -> dict[str, list[str]]:
    """Each image's candidates by visual words (lookalike.verify.words), each pair once: id -> ids.
    Reads every image's features (made from its source where missing) on the pool's threads."""
    images = [(doc.id, doc.source) for doc in index.scan()]
    step = max(1, len(images) // VOCABULARY_IMAGES)
    sample = [found.desc for found in pool.map(lambda image: judge.features(*image), images[::step])
              if found is not None and found.count]  # fmt: skip
    if not sample:
        return {}
    vocabulary = words.Vocabulary.drawn(np.concatenate(sample))
    bags: list[np.ndarray] = []
    with Progress("words", len(images), unit="img", enabled=progress) as shown:
        for chunk in batched(images, CHUNK):
            bags += pool.map(lambda image: vocabulary.bag(judge.features(*image)), chunk)
            shown.update(len(chunk))
    sharing: dict[str, list[str]] = {}
    proposed: set[tuple[str, str]] = set()
    for (doc_id, _), near in zip(images, vocabulary.neighbours(bags), strict=True):
        for position, _score in near:
            other = images[position][0]
            key = (doc_id, other) if doc_id < other else (other, doc_id)
            if key not in proposed:
                proposed.add(key)
                sharing.setdefault(doc_id, []).append(other)
    return sharing
