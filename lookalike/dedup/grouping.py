"""Groups of one linked set: which image is kept, and which verified images join it."""

from __future__ import annotations

import numpy as np

from lookalike.dedup.boxes import content, holds
from lookalike.dedup.judge import Judge
from lookalike.dedup.output import described
from lookalike.dedup.rules import consistent, holds_another, holds_copy, seen_in_copies, through_copy
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.verify.verdict import Verdict

CROSS_CHECKED = 50  # a linked set split into at most this many groups has each duplicate tried with every keeper


def largest_first(doc: Doc) -> tuple:
    """The keeper first: the most pixels, then the earliest ingested, then the smallest id."""
    return (-((doc.width or 0) * (doc.height or 0)), doc.ingested_at or "", doc.id)


def earliest_first(doc: Doc) -> tuple:
    """The keeper first: the earliest ingested, then the most pixels, then the smallest id."""
    return (doc.ingested_at or "", -((doc.width or 0) * (doc.height or 0)), doc.id)


KEEPERS = {"largest": largest_first, "earliest": earliest_first}  # which image of a group is kept


def verified_groups(
    index: VectorIndex, judge: Judge, ids: list[str], keeper_order=largest_first, apart=lambda a, b: False,
) -> list[dict]:  # fmt: skip
    """The groups of one linked set: its largest picture and every image verified as a copy or a part
    of it; then the largest of the rest and its own, and so on (nobody joins a group only through
    another image).

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
