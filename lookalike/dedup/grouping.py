"""Groups of one linked set: which image is kept, and which verified images join it."""

from __future__ import annotations

import numpy as np

from lookalike.dedup.boxes import content, holds
from lookalike.dedup.judge import Judge
from lookalike.dedup.keepers import best_copy, largest_first
from lookalike.dedup.output import groups_out
from lookalike.dedup.records import Group, Member
from lookalike.dedup.rules import consistent, holds_another, holds_copy, other_shot, seen_in_copies, through_copy
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.verify.verdict import Verdict

CROSS_CHECKED = 50  # a linked set split into at most this many groups has each duplicate tried with every keeper


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
    through it. A part that another shot of the keeper's scene holds with better aligned pixels
    goes with that shot, and is not listed with this one (`other_shot`)."""
    docs = [doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None]
    made = formed(docs, judge, keeper_order, apart)
    if 1 < len(made) <= CROSS_CHECKED:
        cross_list(made, judge, apart)
    return groups_out(made)


def judged(judge: Judge, doc: Doc, keep: Doc, apart) -> tuple[float, Verdict | None]:
    """`doc`'s cosine to `keep` and what it is to it (None: someone said they are not duplicates)."""
    cosine = float(np.dot(keep.vector, doc.vector))
    if apart(doc.id, keep.id):
        return cosine, None
    return cosine, judge.judge(doc.id, doc.source, keep.id, keep.source, cosine, directed=True)


def formed(docs: list[Doc], judge: Judge, keeper_order, apart) -> list[Group]:
    """Keepers in turn, each with the images verified against it (see verified_groups). With the
    `best` keeper, a group whose copy shows its picture better (keepers.best_copy: more of its
    pixels, or nothing added around it) is formed again around that copy."""
    demoted: set[str] = set()  # keepers that only held another photo (holds_another): chosen last
    promoted: list[str] = []  # better copies found, judged first from then on
    improve = keeper_order is largest_first

    def order(doc: Doc) -> tuple:  # the copy promoted last first: it was found better than the ones before
        rank = -promoted.index(doc.id) if doc.id in promoted else 1
        return (doc.id in demoted, rank, keeper_order(doc))

    rest = sorted(docs, key=order)
    made: list[Group] = []
    while len(rest) >= 2:
        keep, found = rest[0], []
        aligned: list[Doc] = []  # keypoints agree with the keeper's, pixels did not
        left: list[Doc] = []
        for doc in rest[1:]:
            cosine, verdict = judged(judge, doc, keep, apart)
            if verdict is not None and verdict.joins:
                found.append(Member(doc, cosine, verdict))
            else:
                (aligned if verdict is not None and verdict.is_same_scene else left).append(doc)
        direct = list(found)
        shots: list[Doc] = []  # judged another shot of the keeper's scene, and no copy carries them
        for doc in aligned:
            bridged = through_copy(doc, keep, direct, judge, apart)
            if bridged is not None:
                found.append(bridged)
            else:
                shots.append(doc)
        left += shots
        found, elsewhere = other_shot(found, shots, judge, apart)
        found, unseen = seen_in_copies(found, judge, apart)
        members, strays = consistent(found)
        strays += unseen + elsewhere
        if keep.id not in demoted and holds_another(members, judge):
            demoted.add(keep.id)
            rest = sorted(rest, key=order)
            continue
        better = best_copy(keep, members) if improve else keep
        if better is not keep and better.id not in promoted:
            promoted.append(better.id)
            rest = sorted(rest, key=order)
            continue
        if members:
            made.append(Group(keep, members))
        rest = sorted(left + [member.doc for member in strays], key=order)
    return made


def cross_list(made: list[Group], judge: Judge, apart) -> None:
    """List each image (a member, or a keeper: a collage kept for its host) in every other group of
    the set whose keeper it holds whole, or whose sure copy it holds (see verified_groups)."""
    home = {member.doc.id: (n, member.doc) for n, group in enumerate(made) for member in group.members}
    home |= {group.keep.id: (n, group.keep) for n, group in enumerate(made)}
    for doc_id, (n, doc) in home.items():
        for other, group in enumerate(made):
            if other == n:
                continue
            cosine, verdict = judged(judge, doc, group.keep, apart)
            joined: Member | None = Member(doc, cosine, verdict) if verdict is not None and verdict.joins else None
            witnessed = joined is None or not holds(joined.verdict.box, content(group.members))
            if witnessed:
                joined = holds_copy(doc, group.keep, group.members, judge, apart)
            if joined is None:
                continue
            shots = [rival.keep for rival in made
                     if rival is not group and judge.same_scene(rival.keep.id, group.keep.id)]  # fmt: skip
            if not other_shot([joined], shots, judge, apart, witnessed)[0]:
                continue  # a window of another shot of the scene, listed there
            kept, _ = consistent([*group.members, joined])
            if any(member.doc.id == doc_id for member in kept):
                group.members.append(joined)
