"""Duplicate groups over the whole index -> JSON or CSV.

    lookalike dedup --out duplicates.json            # verified (the default): groups, and stacks beside
    lookalike dedup --no-verify --threshold 0.85     # cosine only

Verified (`find_verified`): each image's neighbours at cosine >= CANDIDATE_THRESHOLD, and the
images it shares the most visual words with (lookalike.verify.words: a photo pasted small into a
collage is far from it by cosine), are judged by lookalike.verify; a group is the largest picture
(pixels, then earliest ingested) and every image verified as a copy or a part of it - never an
image linked only through others, but for one hop through a sure copy (`through_copy`); images
judged another shot of the same scene (`same_scene`) are reported as stacks, apart from the groups.
In an index with region vectors the candidates are found by region scores too (a photo pasted
into a collage is found by the collage's window): verification keeps out the false pairs that
region scores bring.

Cosine only (`find_groups`): connected components of "cosine >= threshold"; each group keeps its
earliest-ingested document (ties: smallest id), the others listed with their cosine to it. Two
images are scored whole against whole, even in an index with region vectors: unverified region
scores found more of the crops and collages but lowered pair precision far more (`lookalike eval
--dedup`; docs/relevance.md), so they are an option there (`by_regions=True`). The default
threshold, 0.85, kept pair precision at 0.94 on that measurement (EfficientNet-Lite0); 0.95
found 5 % of the duplicates.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np

from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.progress import Progress
from lookalike.review.decisions import Apart, Decision, apply_all
from lookalike.verify import words
from lookalike.verify.features import Features
from lookalike.verify.store import FeatureStore
from lookalike.verify.verdict import Verdict, verify

DEFAULT_THRESHOLD = 0.85  # cosine only
CANDIDATE_THRESHOLD = 0.4  # verified: neighbours at or above this cosine are judged (0.5: recall 0.02 lower)
FEATURE_CACHE = 1024  # features of this many images kept in memory during a verified run (~70 KB each)
CROSS_CHECKED = 50  # a linked set split into at most this many groups has each duplicate tried with every keeper
HOLDS = 0.8  # share of a keeper's area an image must cover to be listed in that keeper's group too
VOCABULARY_IMAGES = 1000  # the visual words are drawn from the descriptors of at most this many images
BRIDGE_CORRELATION = 0.7  # a copy's aligned pixels must correlate this well to vouch for another (through_copy)
SEEN_IN = 3  # a part must be held by one of its keeper's this many surest copies too (seen_in_copies)
CHUNK = 32  # images whose candidate pairs are judged together (their features: at most 32 x 11 in the cache)


def find_groups(
    index: VectorIndex, threshold: float = DEFAULT_THRESHOLD, neighbours: int = 10, progress: bool = False,
    by_regions: bool = False, decisions: Sequence[Decision] = (),
) -> list[dict]:  # fmt: skip
    """Connected components of the "cosine >= threshold" graph over each doc's nearest neighbours
    (scored whole against whole; `by_regions`: against the other's best vector, as search scores).

    The index is streamed once; memory holds only the ids that have a duplicate (their union-find
    links), never the vectors of the whole index. Each group's documents are read back at the end."""
    index.refresh()  # every write acknowledged before the run takes part in it
    parent: dict[str, str] = {}
    apart = Apart(list(decisions))

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    with Progress("dedup", index.count(), unit="img", enabled=progress) as shown:
        for doc in index.scan():
            found = index.search(doc.vector, neighbours + 1, exclude_ids=[doc.id], min_similarity=threshold,
                                 by_regions=by_regions)  # fmt: skip
            for hit in found:
                if not apart(doc.id, hit.id):
                    parent[root(hit.id)] = root(doc.id)
            shown.update(1, linked=len(parent))
    members: dict[str, list[str]] = {}
    for doc_id in list(parent):
        members.setdefault(root(doc_id), []).append(doc_id)
    groups = [made for ids in members.values() if len(ids) >= 2 and (made := group(index, ids)) is not None]
    groups.sort(key=lambda made: -len(made["duplicates"]))
    return apply_all(groups, list(decisions))


def group(index: VectorIndex, ids: list[str]) -> dict | None:
    """`{keep, duplicates}` for linked ids: the earliest ingested is kept (ties: smallest id); None
    when fewer than two of them are still indexed."""
    docs = [doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None]
    if len(docs) < 2:
        return None
    docs.sort(key=lambda doc: (doc.ingested_at or "", doc.id))
    keep = docs[0]
    duplicates = [{**described(doc), "similarity": round(float(np.dot(keep.vector, doc.vector)), 6)}
                  for doc in docs[1:]]  # fmt: skip
    return {"keep": described(keep), "duplicates": duplicates}


def described(doc: Doc) -> dict:
    """What a group says of one of its images."""
    return {"id": doc.id, "source": doc.source, "width": doc.width, "height": doc.height}


def batched(items, size: int):
    """Lists of `size` items (the last may be shorter), read lazily (itertools.batched is 3.12+)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class Linked:
    """Union-find over image ids (only ids that have a link are held)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def root(self, x: str) -> str:
        while self.parent.setdefault(x, x) != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def link(self, a: str, b: str) -> None:
        self.parent[self.root(a)] = self.root(b)

    def components(self) -> list[list[str]]:
        members: dict[str, list[str]] = {}
        for doc_id in list(self.parent):
            members.setdefault(self.root(doc_id), []).append(doc_id)
        return [sorted(ids) for ids in members.values() if len(ids) >= 2]


class Judge:
    """Verdicts on pairs of indexed images, from their stored features (a cache in front). Safe to
    call from several threads: OpenCV releases the GIL, so judging scales with the cores."""

    def __init__(self, store: FeatureStore) -> None:
        self.store, self.cache = store, OrderedDict[str, Features | None]()
        self.kept: dict[tuple[str, str], tuple[str, Verdict]] = {}  # (which was `a`, verdict): all but different
        self.pairs = 0
        self._lock = threading.Lock()

    def features(self, doc_id: str, source: str | None) -> Features | None:
        with self._lock:
            if doc_id in self.cache:
                self.cache.move_to_end(doc_id)
                return self.cache[doc_id]
        found, _ = self.store.get(doc_id, source)  # made from its source on first need (slow: outside the lock)
        with self._lock:
            self.cache[doc_id] = found
            while len(self.cache) > FEATURE_CACHE:
                self.cache.popitem(last=False)
        return found

    def all(self, pairs: list[tuple], pool: ThreadPoolExecutor) -> list[tuple[tuple, Verdict]]:
        """(pair, verdict) for pairs (a, a_source, b, b_source, cosine), judged on the pool's threads,
        each image's features read once."""
        wanted = {a: a_source for a, a_source, *_ in pairs} | {b: b_source for _, _, b, b_source, _ in pairs}
        self.prefetch(wanted, pool)
        return list(zip(pairs, pool.map(lambda pair: self.judge(*pair), pairs), strict=True))

    def linked(self, a: str, b: str) -> bool:
        """Whether a and b were judged a copy or a part, one of the other, either way round."""
        found = self.kept.get((a, b) if a < b else (b, a))
        return found is not None and found[1].verdict in ("copy", "part")

    def copies(self, a: str, b: str) -> bool:
        """Whether a and b were judged copies of each other (either way round)."""
        found = self.kept.get((a, b) if a < b else (b, a))
        return found is not None and found[1].verdict == "copy"

    def prefetch(self, wanted: dict[str, str | None], pool: ThreadPoolExecutor) -> None:
        """Have the features of `wanted` (id -> source) in the cache, each made or read once."""
        with self._lock:
            missing = [(doc_id, source) for doc_id, source in wanted.items() if doc_id not in self.cache]
        list(pool.map(lambda item: self.features(*item), missing))

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
            if verdict.verdict != "different":
                self.kept[key] = (a, verdict)
        return verdict


def largest_first(doc: Doc) -> tuple:
    """The keeper first: the most pixels, then the earliest ingested, then the smallest id."""
    return (-((doc.width or 0) * (doc.height or 0)), doc.ingested_at or "", doc.id)


def earliest_first(doc: Doc) -> tuple:
    """The keeper first: the earliest ingested, then the most pixels, then the smallest id."""
    return (doc.ingested_at or "", -((doc.width or 0) * (doc.height or 0)), doc.id)


KEEPERS = {"largest": largest_first, "earliest": earliest_first}  # which image of a group is kept


def find_verified(
    index: VectorIndex, store: FeatureStore, threshold: float = CANDIDATE_THRESHOLD, neighbours: int = 10,
    progress: bool = False, *, keep: str = "largest", decisions: Sequence[Decision] = (), workers: int | None = None,
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
    (default: every core). `stats`, if given, gets the pairs judged."""
    keeper_order = KEEPERS[keep]
    index.refresh()
    judge, copies, scenes, apart = Judge(store), Linked(), Linked(), Apart(list(decisions))
    with ThreadPoolExecutor(workers or os.cpu_count() or 1, thread_name_prefix="dedup") as pool:
        sharing = shared_words(index, judge, pool, progress) if by_words else {}
        with Progress("dedup", index.count(), unit="img", enabled=progress) as shown:
            for chunk in batched(index.scan(), CHUNK):
                pairs = [pair for doc in chunk
                         for pair in candidates(index, doc, threshold, neighbours, by_regions, sharing.get(doc.id, ()))
                         if not apart(pair[0], pair[2])]  # fmt: skip
                for (a, _, b, _, _), verdict in judge.all(pairs, pool):
                    if verdict.verdict in ("copy", "part"):
                        copies.link(a, b)
                    elif verdict.verdict == "same_scene":
                        scenes.link(a, b)
                shown.update(len(chunk), pairs=judge.pairs, grouped=len(copies.parent))
    if stats is not None:
        stats["pairs"] = judge.pairs
    groups = [group for ids in copies.components()
              for group in verified_groups(index, judge, ids, keeper_order, apart)]  # fmt: skip
    groups = apply_all(sorted(groups, key=lambda made: -len(made["duplicates"])), list(decisions))
    stacks = []
    for ids in scenes.components():
        docs = [doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None]
        if len(docs) >= 2:
            stacks.append({"images": [described(doc) for doc in sorted(docs, key=keeper_order)],
                           "verdict": "same_scene"})  # fmt: skip
    return groups, stacks


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


def verified_groups(
    index: VectorIndex, judge: Judge, ids: list[str], keeper_order=largest_first, apart=lambda a, b: False,
) -> list[dict]:  # fmt: skip
    """The groups of one linked set: its largest picture and every image verified as a copy or a part
    of it; then the largest of the rest and its own, and so on (nobody joins a group only through
    another image). Measured against grouping around the most-linked image instead: recall 0.606 vs
    0.589 at the same precision.

    Parts must lie where the group's pictures are: a collage kept as the largest picture holds its
    photo's copies as parts and, elsewhere in it, crops of the photo it was pasted into; those
    crops are not copies of the photo (`consistent`), and the collage's copies must hold its parts
    too (`seen_in_copies`). A collage that only holds parts, copies of one photo, is not kept
    (`holds_another`): that photo's largest copy is. An image - a duplicate or a keeper - is then
    also listed in every other group of the set whose keeper it is verified against and holds
    whole, or whose sure copy it holds (`holds_copy`); `also_in` names the others: a collage
    shows two photos and is a duplicate of both. It is never a keeper there, so no group grows
    through it."""
    demoted: set[str] = set()  # keepers that only held another photo (holds_another): chosen last

    def order(doc: Doc) -> tuple:
        return (doc.id in demoted, keeper_order(doc))

    rest = sorted((doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None), key=order)
    made: list[tuple[Doc, list[tuple[Doc, float, Verdict]]]] = []

    def judged(doc: Doc, keep: Doc) -> tuple[float, Verdict | None]:
        cosine = float(np.dot(keep.vector, doc.vector))
        if apart(doc.id, keep.id):
            return cosine, None
        return cosine, judge.judge(doc.id, doc.source, keep.id, keep.source, cosine, directed=True)

    def verified(doc: Doc, keep: Doc) -> tuple[float, Verdict | None]:
        cosine, verdict = judged(doc, keep)
        return cosine, verdict if verdict is not None and verdict.verdict in ("copy", "part") else None

    while len(rest) >= 2:
        keep, found = rest[0], []
        aligned: list[Doc] = []  # keypoints agree with the keeper's, pixels did not
        left: list[Doc] = []
        for doc in rest[1:]:
            cosine, verdict = judged(doc, keep)
            if verdict is not None and verdict.verdict in ("copy", "part"):
                found.append((doc, cosine, verdict))
            else:
                (aligned if verdict is not None and verdict.verdict == "same_scene" else left).append(doc)
        direct = list(found)
        for doc in aligned:
            entry = through_copy(doc, keep, direct, judge, apart)
            if entry is not None:
                found.append(entry)
            else:
                left.append(doc)
        found, unseen = seen_in_copies(found, judge, apart)
        duplicates, strays = consistent(found)
        strays += unseen
        if keep.id not in demoted and holds_another(duplicates, judge):
            demoted.add(keep.id)
            rest = sorted(rest, key=order)
            continue
        if duplicates:
            made.append((keep, duplicates))
        rest = sorted(left + [doc for doc, _, _ in strays], key=order)
    if 1 < len(made) <= CROSS_CHECKED:
        home = {doc.id: (n, doc) for n, (_, duplicates) in enumerate(made) for doc, _, _ in duplicates}
        home |= {keep.id: (n, keep) for n, (keep, _) in enumerate(made)}  # a collage kept for its host
        for doc_id, (n, doc) in home.items():
            for other, (keep, theirs) in enumerate(made):
                if other == n:
                    continue
                cosine, verdict = verified(doc, keep)
                if verdict is None or not holds(verdict.box, content(theirs)):
                    witnessed = holds_copy(doc, keep, theirs, judge, apart)
                    if witnessed is None:
                        continue
                    cosine, verdict = witnessed
                joined, _ = consistent([*theirs, (doc, cosine, verdict)])
                if any(entry[0].id == doc_id for entry in joined):
                    theirs.append((doc, cosine, verdict))
    keepers_of: dict[str, list[str]] = {keep.id: [keep.id] for keep, _ in made}  # the groups each image is in
    for keep, duplicates in made:
        for doc, _, _ in duplicates:
            keepers_of.setdefault(doc.id, []).append(keep.id)
    return [{"keep": described(keep), "duplicates": [
        {**described(doc), "similarity": round(cosine, 6), "verdict": verdict.verdict, "reason": verdict.reason,
         **({"also_in": [k for k in keepers_of[doc.id] if k != keep.id]} if len(keepers_of[doc.id]) > 1 else {})}
        for doc, cosine, verdict in duplicates]} for keep, duplicates in made]  # fmt: skip


def through_copy(doc: Doc, keep: Doc, found: list[tuple], judge: Judge, apart) -> tuple | None:
    """(doc, cosine, verdict) for an image whose keypoints agree with the keeper's on one transform
    but whose aligned pixels did not (judged `same_scene`), when it was verified, while candidates
    were judged, as a copy of one of the keeper's copies: that copy vouches for the pixels, and
    the image lies in the keeper where the copy does (a screenshot and a letterboxed keeper: their
    frames differ where they overlap; both align with the photo). One hop, copy to copy only: a
    collage is a copy of the photo it was pasted into, and the other photo's copies are parts of
    it, not of that photo. Both verdicts must be copies whose pixels correlate BRIDGE_CORRELATION
    or more. Measured (lookalike eval --dedup's collection, 2 seeds): bridging images the keeper
    judged `different` (too few agreeing keypoints) put them in the wrong group 68 times in 70;
    from `same_scene`, 37 right and 5 wrong, the wrong ones all other shots of one scene through a
    copy at correlation 0.64-0.65, which the bound keeps out (it loses 7 of the right ones).
    None if no copy vouches."""

    for member, _, seen in found:
        if not vouches(seen) or apart(doc.id, member.id) or not judge.linked(doc.id, member.id):
            continue
        verdict = judge.judge(doc.id, doc.source, member.id, member.source, float(np.dot(doc.vector, member.vector)),
                              directed=True)  # fmt: skip
        if vouches(verdict):
            return doc, float(np.dot(keep.vector, doc.vector)), carried(verdict, member, keep, seen)
    return None


def seen_in_copies(found: list[tuple], judge: Judge, apart) -> tuple[list[tuple], list[tuple]]:
    """(kept, unseen) of a keeper's verified images (doc, cosine, verdict): where the keeper has sure
    copies, a part stays only if one of the SEEN_IN surest also holds it. A keeper's crops are in
    its copies too; a collage kept as the largest picture also has as parts the copies of the photo
    pasted into it, which its copies (copies of the photo it was pasted into) do not hold: without
    this, the two photos' copies met in one group."""
    copies = sorted((entry for entry in found if vouches(entry[2])), key=lambda entry: -(entry[2].correlation or 0.0))
    if not copies:
        return found, []
    witnesses = [entry[0] for entry in copies[:SEEN_IN]]

    def seen(doc: Doc) -> bool:
        return any(judge.judge(doc.id, doc.source, copy.id, copy.source, float(np.dot(doc.vector, copy.vector)))
                   .verdict in ("copy", "part") for copy in witnesses if not apart(doc.id, copy.id))  # fmt: skip

    kept: list[tuple] = []
    unseen: list[tuple] = []
    for entry in found:
        (kept if entry[2].verdict != "part" or seen(entry[0]) else unseen).append(entry)
    return kept, unseen


def holds_copy(doc: Doc, keep: Doc, members: list[tuple], judge: Judge, apart) -> tuple[float, Verdict] | None:
    """(cosine, verdict) for an image that holds one of a keeper's sure copies whole, judged so while
    candidates were judged, when it did not verify against the keeper itself: a collage holds the
    photo pasted into it, and a plain copy of that photo is easier to see in it than a keeper
    that is the photo tilted on a larger canvas, or framed. It lies in the keeper where the copy
    does. None if it holds none."""
    picture = content(members)
    for member, _, seen in members:
        if not vouches(seen) or not holds(seen.box, picture) or apart(doc.id, member.id):
            continue  # a crop of the keeper is no witness: another shot of the scene holds it too
        if not judge.linked(doc.id, member.id):
            continue
        verdict = judge.judge(doc.id, doc.source, member.id, member.source, float(np.dot(doc.vector, member.vector)),
                              directed=True)  # fmt: skip
        if verdict.verdict == "part" and holds(verdict.box):
            return float(np.dot(keep.vector, doc.vector)), carried(verdict, member, keep, seen)
    return None


def carried(verdict: Verdict, member: Doc, keep: Doc, seen: Verdict) -> Verdict:
    """`verdict` against `member`, a copy of `keep`, carried over to `keep`: the reason names the
    copy, and the image lies in the keeper where that copy does (`seen`: the copy's own verdict)."""
    reason = f"{verdict.reason}; judged against {member.id}, a copy of {keep.id}"
    return Verdict(verdict.verdict, reason, verdict.inliers, verdict.correlation, None, seen.box)


def holds_another(members: list[tuple], judge: Judge) -> bool:
    """Whether a keeper's verified images are only parts of it, two of them copies of each other:
    it is a collage holding another photo, whose copies they are, and that photo's largest copy is
    the better keeper (the collage then joins its group as the picture that holds it). Kept as the
    keeper, the collage also drew in, as its copies, the copies of the photo it was pasted into."""
    if any(entry[2].verdict == "copy" for entry in members):
        return False
    parts = [entry[0].id for entry in members]
    return any(judge.copies(a, b) for n, a in enumerate(parts) for b in parts[n + 1 :])


def vouches(verdict: Verdict) -> bool:
    """Whether a verdict is a copy sure enough to carry another image into a group."""
    return verdict.verdict == "copy" and (verdict.correlation or 0.0) >= BRIDGE_CORRELATION


def holds(box: tuple | None, extent: tuple = (0.0, 0.0, 1.0, 1.0)) -> bool:
    """Whether an image whose outline in a keeper is `box` holds (HOLDS of) the keeper's picture,
    `extent` (a collage holds the photo pasted into it; a crop of another shot of the scene does not)."""
    return box is None or shares(box, extent, HOLDS * area(extent))


def content(members: list[tuple]) -> tuple:
    """Where a keeper's picture lies in it: its copies' outlines, side by side median (a letterboxed
    keeper's photo, not its border; a tilted copy's corners reach past it), or all of it when none is
    a copy."""
    boxes = [entry[2].box for entry in members if entry[2].verdict == "copy" and entry[2].box is not None]
    if not boxes:
        return (0.0, 0.0, 1.0, 1.0)
    return tuple(float(side) for side in np.median(np.array(boxes), axis=0))


def within(inner: tuple | None, outer: tuple | None) -> bool:
    """Whether at least half of box `inner` lies in box `outer` (left, top, right, bottom fractions)."""
    return inner is None or outer is None or shares(inner, outer, 0.5 * area(inner))


def area(box: tuple) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def shares(a: tuple, b: tuple, least: float) -> bool:
    """Whether two boxes (left, top, right, bottom fractions) meet over an area of at least `least`."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width > 0 and height > 0 and width * height >= least


def consistent(found: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """(members, strays) of a keeper's verified images (doc, cosine, verdict): copies stay; a part
    stays if it lies mostly within a copy's box in the keeper or, with no copies, within the box
    most other parts lie in (a collage's pasted photo, not the picture around it)."""
    copies = [entry for entry in found if entry[2].verdict == "copy"]
    parts = [entry for entry in found if entry[2].verdict == "part"]
    if copies:
        anchors = [entry[2].box for entry in copies]
    elif parts:
        anchors = [max((entry[2].box for entry in parts),
                       key=lambda b: sum(within(other[2].box, b) for other in parts))]  # fmt: skip
    else:
        return [], []

    def belongs(entry: tuple) -> bool:
        return entry[2].verdict == "copy" or any(within(entry[2].box, anchor) for anchor in anchors)

    return [entry for entry in found if belongs(entry)], [entry for entry in found if not belongs(entry)]


def write(groups: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["group", "keep_id", "keep_source", "duplicate_id", "duplicate_source", "similarity",
                             "verdict"])  # fmt: skip
            for number, group in enumerate(groups, start=1):
                for dup in group["duplicates"]:
                    writer.writerow([number, group["keep"]["id"], group["keep"]["source"], dup["id"], dup["source"],
                                     dup["similarity"], dup.get("verdict", "")])  # fmt: skip
    else:
        out.write_text(json.dumps(groups, indent=2))
