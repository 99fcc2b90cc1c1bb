"""Verdicts on pairs of indexed images, from their stored features (the store keeps the most recent
decoded in memory)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from lookalike.verify.features import Features
from lookalike.verify.store import FeatureStore
from lookalike.verify.verdict import Verdict, verify


class Judge:
    """Verdicts on pairs of indexed images, from their stored features. Safe to
    call from several threads: OpenCV releases the GIL, so judging scales with the cores."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.kept: dict[tuple[str, str], tuple[str, Verdict]] = {}  # (which was `a`, verdict): all but different
        self.pairs = 0
        self.missing: dict[str, str] = {}  # id -> why it has no features (never judged)
        self._lock = threading.Lock()

    def features(self, doc_id: str, source: str | None) -> Features | None:
        found, why = self.store.get(doc_id, source)  # made from its source on first need
        if found is None:
            with self._lock:
                self.missing[doc_id] = why or "no features"
        return found

    def all(self, pairs: list[tuple], pool: ThreadPoolExecutor) -> list[tuple[tuple, Verdict]]:
        """(pair, verdict) for pairs (a, a_source, b, b_source, cosine), judged on the pool's threads,
        each image's features read once."""
        wanted = {a: a_source for a, a_source, *_ in pairs} | {b: b_source for _, _, b, b_source, _ in pairs}
        self.prefetch(wanted, pool)
        return list(zip(pairs, pool.map(lambda pair: self.judge(*pair), pairs), strict=True))

    def kept_verdict(self, a: str, b: str) -> Verdict | None:
        """The verdict kept on a and b, judged either way round (None: not judged, or different)."""
        found = self.kept.get((a, b) if a < b else (b, a))
        return None if found is None else found[1]

    def linked(self, a: str, b: str) -> bool:
        """Whether a and b were judged a copy or a part, one of the other, either way round."""
        found = self.kept_verdict(a, b)
        return found is not None and found.joins

    def same_scene(self, a: str, b: str) -> bool:
        """Whether a and b were judged two shots of one scene (either way round)."""
        found = self.kept_verdict(a, b)
        return found is not None and found.is_same_scene

    def copies(self, a: str, b: str) -> bool:
        """Whether a and b were judged copies of each other (either way round)."""
        found = self.kept_verdict(a, b)
        return found is not None and found.is_copy

    def prefetch(self, wanted: dict[str, str | None], pool: ThreadPoolExecutor) -> None:
        """Have the features of `wanted` (id -> source) made or read, on the pool's threads."""
        list(pool.map(lambda item: self.features(*item), wanted.items()))

    def judge(self, a: str, a_source: str | None, b: str, b_source: str | None, cosine: float,
              directed: bool = False) -> Verdict:  # fmt: skip
        """What `a` is to `b`. `directed`: its box must be where a lies in b (a verdict kept the other
        way round is judged again)."""
        key = (a, b) if a < b else (b, a)
        if key in self.kept and (not directed or self.kept[key][0] == a):
            return self.kept[key][1]
        fa, fb = self.features(a, a_source), self.features(b, b_source)
        if fa is None or fb is None:
            return Verdict("different", "no features: a source cannot be read")
        verdict = verify(fa, fb, cosine=cosine)
        with self._lock:
            self.pairs += 1
            if verdict.joins or verdict.is_same_scene:  # all but different
                self.kept[key] = (a, verdict)
        return verdict
