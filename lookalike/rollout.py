"""`lookalike admin rollout --model NEW`: put a model whose vectors live in another space in place
while the site keeps searching (blue/green).

1. A new index for NEW's vectors beside the live one, recorded as the catalogue's next pair
   (lookalike.index.live): from then on every write through the API reaches both indexes.
2. Every document of the live index is embedded by NEW from its source and written to the new
   index (ingest's own pipeline: resumable, a progress line, a bad image counted, not fatal);
   documents deleted meanwhile leave the new index too.
3. Checks: the counts match, every source was read, and a sample of images, embedded by NEW and
   searched in the new index, finds itself.
4. Switch: the live pair becomes (NEW, the new index) in one step; each API replica reads it within
   a second (the command returns after that), and each request keeps the pair it started with, so
   no query vector of one model meets index vectors of another.

The old index stays: rolling back is the same command with the old model (it resumes into the old
index on the embedded backend, builds a fresh one on OpenSearch). Running it again after an
interruption resumes; with the live model it abandons a rollout that is building.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lookalike.errors import BadQuery, SourceUnreadable
from lookalike.index import VectorIndex, live, open_index
from lookalike.ingest import sources
from lookalike.ingest.pipeline import Ingestor, Report
from lookalike.serving.client import ModelClient
from lookalike.settings import Settings

SAMPLE = 20  # images searched in the new index before the switch
SETTLE_S = 2.5  # > 2 x the API's LIVE_CHECK_S: every replica writes to both indexes before the copy reads


@dataclass
class Outcome:
    switched: bool
    report: Report | None = None
    problems: list[str] = field(default_factory=list)
    found: int = 0  # sampled images that found themselves in the new index
    sampled: int = 0


def configured(settings: Settings) -> live.Pair:
    """The live pair of a catalogue with no record: the configured endpoint and its model."""
    client = ModelClient.from_settings(settings)
    try:
        info = client.info()
    finally:
        client.close()
    index = None
    if settings.opensearch_url:
        from lookalike.index.opensearch_client import connect
        from lookalike.index.opensearch_index import alias_targets

        found = alias_targets(connect(settings), settings.alias)
        if not found:
            raise BadQuery(f"alias {settings.alias} names no index: nothing to roll out from (ingest first)")
        index = found[0]
    return live.Pair(settings.model, info.model, info.dimension, index)


def opened(settings: Settings, pair: live.Pair) -> VectorIndex:
    return open_index(pair.settings(settings), pair.model, pair.dimension)


def run(settings: Settings, endpoint: str, concurrency: int = 4, progress: bool = True, sample: int = SAMPLE,
        say: Callable[[str], None] = print, settle: float = SETTLE_S) -> Outcome:  # fmt: skip
    state = live.read(settings)
    current = state.live or configured(settings)
    if endpoint == current.endpoint:
        if state.next is not None:  # the live model named again: abandon the rollout that builds
            live.abandon(settings, current, state.next)
            say(f"rollout to {state.next.endpoint} abandoned; {current.endpoint} stays live")
        else:
            say(f"{endpoint} is already live ({current.model}, {current.dimension}-d)")
        return Outcome(switched=False)

    client = ModelClient.from_settings(settings.replace(model=endpoint))
    try:
        info = client.info()
        if state.next is not None and state.next.endpoint == endpoint:
            nxt = state.next
            say(f"resuming the rollout to {endpoint} ({info.model}, {info.dimension}-d)")
        else:
            nxt = _fresh(settings, endpoint, info.model, info.dimension)
            say(f"rolling out {endpoint} ({info.model}, {info.dimension}-d) beside {current.endpoint} "
                f"({current.model}, {current.dimension}-d)")  # fmt: skip
        live.begin(settings, current, nxt)
        time.sleep(settle)
        old, new = opened(settings, current), opened(settings, nxt)
        try:
            survey = Survey(sample)
            outcome = _build(settings.replace(model=endpoint), survey, old, new, info, concurrency, progress)
            outcome.found, outcome.sampled = _sample(settings, survey, new, client)
            if outcome.sampled and outcome.found < outcome.sampled:
                outcome.problems.append(f"only {outcome.found} of {outcome.sampled} sampled images found themselves "
                                        "in the new index")  # fmt: skip
            if outcome.problems:
                for problem in outcome.problems:
                    say(f"not switched: {problem}")
                say(f"the rollout stays building (writes reach both); run the same command again to resume, "
                    f"or `lookalike admin rollout --model {current.endpoint}` to abandon it")  # fmt: skip
                return outcome
            live.switch(settings, live.State(current, nxt))
            outcome.switched = True
            time.sleep(settle)  # every API replica has read the switch when this command says "live"
            say(f"live: {endpoint} ({info.model}, {info.dimension}-d{', index ' + nxt.index if nxt.index else ''}); "
                f"{new.count()} images, {outcome.found}/{outcome.sampled} sampled found themselves. "
                f"Roll back: lookalike admin rollout --model {current.endpoint}")  # fmt: skip
            return outcome
        finally:
            old.close()
            new.close()
    finally:
        client.close()


def _fresh(settings: Settings, endpoint: str, model: str, dimension: int) -> live.Pair:
    """A new, empty index for `model`: OpenSearch a new physical index; embedded its folder, emptied
    (it may hold what an earlier rollout left: stale vectors of documents changed since)."""
    if settings.opensearch_url:
        from lookalike.index.opensearch_client import connect
        from lookalike.index.opensearch_index import create_index

        return live.Pair(endpoint, model, dimension, create_index(connect(settings), settings, model, dimension))
    pair = live.Pair(endpoint, model, dimension)
    index = opened(settings, pair)
    try:
        for doc_id in [doc.id for doc in index.scan()]:
            index.delete(doc_id)
        index.flush()
    finally:
        index.close()
    return pair


class Survey:
    """One pass over the live index: the copy's items, every id it holds, and a fixed-size random
    sample (reservoir, seeded) of the images with a source, to search for before the switch. The
    index is read once, and no more than the sample is kept."""

    def __init__(self, size: int) -> None:
        self.size, self.seen = size, 0
        self.ids: set[str] = set()
        self.sample: list[tuple[str, str]] = []  # (id, source)
        self.rng = random.Random(0)

    def items(self, index: VectorIndex) -> Iterator[sources.Item]:
        for doc in index.scan():
            self.ids.add(doc.id)
            if doc.source and not doc.source.startswith("upload:"):
                self.seen += 1
                if len(self.sample) < self.size:
                    self.sample.append((doc.id, doc.source))
                else:
                    slot = self.rng.randrange(self.seen)
                    if slot < self.size:
                        self.sample[slot] = (doc.id, doc.source)
            yield sources.Item(doc.source or f"upload:{doc.id}", doc.id, doc.category, list(doc.tags or []))


def _build(settings: Settings, survey: Survey, old: VectorIndex, new: VectorIndex, info, concurrency: int,
           progress: bool) -> Outcome:  # fmt: skip
    """Copy every document of `old` into `new` by the new model; drop from `new` what `old` lost."""
    ingestor = Ingestor(settings, new, info, concurrency=concurrency, features=False)
    report = ingestor.run(survey.items(old), old.count(), progress=progress)
    outcome = Outcome(switched=False, report=report)
    gone = [doc.id for doc in new.scan() if doc.id not in survey.ids]
    for doc_id in gone:
        new.delete(doc_id)
    new.refresh()
    if report.failed:
        reasons = "; ".join(f"{doc_id or source}: {reason}" for source, doc_id, reason in report.errors[:3])
        outcome.problems.append(f"{report.failed} images could not be embedded from their sources ({reasons}); "
                                "an image PUT without a source URL has none: PUT it again, then resume")  # fmt: skip
    if new.count() != old.count():
        outcome.problems.append(f"the new index holds {new.count()} images, the live one {old.count()}")
    return outcome


def _sample(settings: Settings, survey: Survey, new: VectorIndex, client: ModelClient) -> tuple[int, int]:
    """(found, sampled): the survey's sample, embedded by the new model from its sources and searched
    in the new index, that come back among the first 10."""
    found = sampled = 0
    for doc_id, source in survey.sample:
        try:
            data = sources.read(sources.Item(source, doc_id), settings.max_image_bytes)
        except SourceUnreadable:
            continue
        sampled += 1
        hits = new.search(client.embed(data), k=10, by_regions=False)
        found += any(hit.id == doc_id for hit in hits)
    return found, sampled
