"""Verified de-duplication (the default of `lookalike dedup`): candidates judged by local features."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from lookalike.dedup.candidates import CHUNK, batched, candidates, shared_words
from lookalike.dedup.grouping import verified_groups
from lookalike.dedup.judge import Judge
from lookalike.dedup.keepers import KEEPERS
from lookalike.dedup.linked import Linked
from lookalike.dedup.output import stack_out
from lookalike.index import VectorIndex
from lookalike.progress import Progress
from lookalike.review.decisions import Apart, Decision, apply_all
from lookalike.verify import blas
from lookalike.verify.store import FeatureStore

logger = logging.getLogger(__name__)

CANDIDATE_THRESHOLD = 0.4  # neighbours at or above this cosine are judged (docs/relevance.md)


def find_verified(
    index: VectorIndex, store: FeatureStore, threshold: float = CANDIDATE_THRESHOLD, neighbours: int = 10,
    progress: bool = False, *, keep: str = "best", decisions: Sequence[Decision] = (), workers: int | None = None,
    stats: dict | None = None, by_regions: bool = True, by_words: bool = True,
) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """(copy groups, same-scene stacks). Each image's `neighbours` nearest at cosine >= `threshold`
    (by its best vector: region vectors too where the index has them, unless `by_regions` is False)
    and, unless `by_words` is False, the images it shares the most visual words with
    (lookalike.verify.words: a photo pasted small into a collage) are judged; memory holds the ids
    that have a link and the verdicts that are not `different`.
    `keep` (KEEPERS) says which image of a group is kept. `decisions` (lookalike.review) are
    honoured: two images someone said are not duplicates are never linked, a chosen keeper is
    kept, and decided groups say so. Pairs are judged CHUNK images at a time on `workers` threads
    (default: every core). `stats`, if given, gets the pairs judged and the images that have no
    features (id -> why: no stored features and a source that cannot be read), never judged."""
    keeper_order = KEEPERS[keep]
    index.refresh()
    judge, copies, scenes, apart = Judge(store), Linked(), Linked(), Apart(list(decisions))
    blas.one_thread_each()  # the judges' matrix products, one thread each (lookalike.verify.blas)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1, thread_name_prefix="dedup") as pool:
        sharing = shared_words(index, judge, pool, progress) if by_words else {}
        with Progress("dedup", index.count(), unit="img", enabled=progress) as shown:
            for chunk in batched(index.scan(), CHUNK):
                pairs = [pair for doc in chunk
                         for pair in candidates(index, doc, threshold, neighbours, by_regions, sharing.get(doc.id, ()))
                         if not apart(pair[0], pair[2])]  # fmt: skip
                for (a, _, b, _, _), verdict in judge.all(pairs, pool):
                    if verdict.joins:
                        copies.link(a, b)
                    elif verdict.is_same_scene:
                        scenes.link(a, b)
                shown.update(len(chunk), pairs=judge.pairs, grouped=len(copies.parent))
    if judge.missing:
        logger.warning("%d images have no features and were not judged (e.g. %s: %s)", len(judge.missing),
                       *next(iter(judge.missing.items())))  # fmt: skip
    if stats is not None:
        stats["pairs"] = judge.pairs
        stats["missing"] = dict(judge.missing)
    groups = [group for ids in copies.components()
              for group in verified_groups(index, judge, ids, keeper_order, apart)]  # fmt: skip
    groups = apply_all(sorted(groups, key=lambda made: -len(made["duplicates"])), list(decisions))
    stacks = []
    for ids in scenes.components():
        docs = [doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None]
        if len(docs) >= 2:
            stacks.append(stack_out(sorted(docs, key=keeper_order)))
    return groups, stacks
