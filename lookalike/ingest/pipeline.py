"""Ingest: folder or manifest -> TorchServe (concurrent) -> the index, idempotent and resumable.

    lookalike ingest photos/
    lookalike ingest --manifest images.csv --concurrency 8

Each image's id is the SHA-256 of its bytes unless the manifest gives one. An image already
in the index is counted `unchanged` and not re-embedded, so a re-run adds nothing, and a run
killed at any point (kill -9 included) resumes where it stopped: written batches are durable,
the rest is redone, and writes are upserts by id, so nothing is lost or doubled. Bad images
are skipped, counted and listed with their reasons (--errors); the exit code is 1 when any
failed, 2 when the index does not fit the model, 3 when the model server cannot be reached.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lookalike_handler.wire import decode_regions, decode_vector

from lookalike.errors import ImageRefused, SourceUnreadable, UnsupportedMedia
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.ingest import sources
from lookalike.ingest.sources import Item
from lookalike.malloc import map_large_buffers
from lookalike.progress import Progress
from lookalike.serving.client import ModelClient, ModelInfo
from lookalike.settings import RUN_DIR, Settings
from lookalike.verify.features import extract
from lookalike.verify.store import FeatureStore

logger = logging.getLogger(__name__)
DEFAULT_ERRORS = RUN_DIR / "ingest-errors.csv"


@dataclass
class Report:
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    unsized: int = 0  # indexed, but their pixel size could not be read (documents.pixel_size)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (source, id, reason)
    seconds: float = 0.0

    @property
    def seen(self) -> int:
        return self.indexed + self.unchanged + self.failed

    def summary(self) -> str:
        rate = self.seen / self.seconds if self.seconds else 0.0
        text = (f"indexed {self.indexed}, unchanged {self.unchanged}, failed {self.failed} "
                f"in {self.seconds:.1f} s ({rate:.1f} img/s)")  # fmt: skip
        if self.indexed == 0 and self.failed == 0:
            text += f" - nothing new: all {self.unchanged} images were already indexed"
        if self.unsized:
            text += f"; {self.unsized} indexed without their pixel size (unreadable header; logged)"
        return text


@dataclass
class Outcome:
    item: Item
    doc: Doc | None = None
    reason: str | None = None
    known: bool = False
    features: bytes | None = None  # the image's local features (Features.to_bytes), when the ingest keeps them


def batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Ingestor:
    """Streams items through a bounded pool of embedding workers into the index.

    Memory is bounded by the work in flight: at most 2 x `concurrency` images are read at once,
    their bytes dropped when their document is built, and at most `chunk` documents wait for a
    write. Items with a given id are checked against the index in groups of LOOKUP before
    anything is read or downloaded, so a resumed run of a URL manifest with ids fetches only
    what is missing."""

    LOOKUP = 256  # given ids checked against the index per query

    def __init__(
        self, settings: Settings, index: VectorIndex, info: ModelInfo,
        client_factory: Callable[[], ModelClient] | None = None, concurrency: int = 8, chunk: int = 64,
        flush_every: int = 2000, features: FeatureStore | bool | None = True,
    ) -> None:  # fmt: skip
        """`features`: where each image's local features are written before its document (True: the
        store beside the index, FeatureStore.of; False or None: none are made, and verification makes
        them from the source on first need)."""
        self.settings, self.index, self.info = settings, index, info
        self.features = FeatureStore.of(settings) if features is True else (features or None)
        self.client_factory = client_factory or (lambda: ModelClient.from_settings(settings))
        self.concurrency, self.chunk, self.flush_every = concurrency, chunk, flush_every
        self._local = threading.local()
        map_large_buffers()  # each image's bytes go back to the OS when it leaves (lookalike.malloc)

    def _client(self) -> ModelClient:
        if not hasattr(self._local, "client"):
            self._local.client = self.client_factory()
        return self._local.client

    def _process(self, item: Item) -> Outcome:
        """Worker: read bytes, skip known ids, embed, build the Doc. Never raises for one bad image;
        the bytes are gone when it returns."""
        try:
            data = sources.read(item, self.settings.max_image_bytes)
        except SourceUnreadable as exc:
            return Outcome(item, reason=exc.reason)
        doc_id = item.doc_id(data)
        if item.id is None and self.index.existing([doc_id]):  # a given id was checked before reading
            return Outcome(item, known=True)
        scheme = self.settings.regions
        try:
            answer = self._client().embed_response(data, regions=scheme)
        except ImageRefused as exc:  # the image, not the server; any other failure stops the run
            return Outcome(item, reason=f"{exc.status}: {exc.reason}")
        doc = Doc.of_image(doc_id, decode_vector(answer), self.info.model, data, item.source, item.category,
                           item.tags, scheme, decode_regions(answer))  # fmt: skip
        if self.features is None:
            return Outcome(item, doc=doc)
        try:
            return Outcome(item, doc=doc, features=extract(data).to_bytes())
        except UnsupportedMedia as exc:  # the model server read it, so this is rare: counted, not fatal
            return Outcome(item, reason=f"local features: {exc.reason}")

    def run(self, items: Iterable[Item], total: int | None = None, progress: bool = True) -> Report:
        report, started = Report(), time.perf_counter()
        buffer: dict[str, Doc] = {}
        self._made: dict[str, bytes] = {}  # features of the buffered documents
        since_flush = 0
        shown = Progress("ingest", total, enabled=progress)

        def counted() -> dict[str, int]:
            return {"indexed": report.indexed + len(buffer), "unchanged": report.unchanged, "failed": report.failed}

        def collect(future: Future) -> None:
            nonlocal since_flush
            outcome = future.result()
            if outcome.reason:
                report.failed += 1
                report.errors.append((outcome.item.source, outcome.item.id or "", outcome.reason))
            elif outcome.known or outcome.doc.id in buffer:
                report.unchanged += 1
            else:
                buffer[outcome.doc.id] = outcome.doc
                if outcome.features is not None:
                    self._made[outcome.doc.id] = outcome.features
                report.unsized += outcome.doc.width is None
            if len(buffer) >= self.chunk:
                since_flush += self._write(buffer, report)
            if since_flush >= self.flush_every:
                self.index.flush()
                since_flush = 0
            shown.update(1, **counted())

        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="embed") as pool:
                in_flight: set[Future] = set()
                for batch in batches(items, self.LOOKUP):
                    known = self.index.existing([item.id for item in batch if item.id])
                    for item in batch:
                        if item.id in known:
                            report.unchanged += 1
                            shown.update(1, **counted())
                            continue
                        in_flight.add(pool.submit(self._process, item))
                        if len(in_flight) >= 2 * self.concurrency:
                            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                            for future in done:
                                collect(future)
                for future in in_flight:
                    collect(future)
            self._write(buffer, report)
        finally:
            shown.close()
            self.index.flush()
        report.seconds = time.perf_counter() - started
        return report

    def _write(self, buffer: dict[str, Doc], report: Report) -> int:
        """Upsert the buffered documents and empty the buffer. One already in the index was written
        earlier in this run (the same image twice) or by another run meanwhile: unchanged."""
        if not buffer:
            return 0
        already = self.index.existing(list(buffer))
        report.unchanged += len(already)
        docs = [doc for doc_id, doc in buffer.items() if doc_id not in already]
        buffer.clear()
        made, self._made = self._made, {}
        if not docs:
            return 0
        if self.features is not None:  # first: an indexed document always has its features
            self.features.write_many((doc.id, made[doc.id]) for doc in docs if doc.id in made)
        written, failures = self.index.upsert(docs)
        report.indexed += written
        by_id = {doc.id: doc for doc in docs}
        for doc_id, reason in failures:
            report.failed += 1
            report.errors.append((by_id[doc_id].source or "", doc_id, reason))
        return written


def write_errors(path: Path, errors: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "id", "reason"])
        writer.writerows(errors)
