"""The rules that decide which verified images stay in a keeper's group, each on its own: a copy
that vouches for another, parts seen in the keeper's copies, parts that lie where the picture is,
a collage that holds another photo."""

from __future__ import annotations

import numpy as np

from lookalike.dedup.boxes import content, holds, within
from lookalike.dedup.judge import Judge
from lookalike.dedup.records import Member
from lookalike.index.documents import Doc
from lookalike.verify.verdict import COPY_CORRELATION, Verdict

BRIDGE_CORRELATION = 0.7  # a copy's aligned pixels must correlate this well to vouch for another (through_copy)
SEEN_IN = 3  # a part must be held by one of its keeper's this many surest copies too (seen_in_copies)


def through_copy(doc: Doc, keep: Doc, found: list[Member], judge: Judge, apart) -> Member | None:
    """`doc` as a member of `keep`'s group when its keypoints agree with the keeper's on one transform
    but its aligned pixels did not (judged `same_scene`), and it was verified, while candidates were
    judged, as a copy of one of the keeper's copies: that copy vouches for the pixels, and the image
    lies in the keeper where the copy does (a screenshot and a letterboxed keeper: their frames
    differ where they overlap; both align with the photo). One hop, copy to copy only: a collage is
    a copy of the photo it was pasted into, and the other photo's copies are parts of it, not of
    that photo. Both verdicts must be copies whose pixels correlate BRIDGE_CORRELATION or more
    (docs/relevance.md says what the bound keeps out). None if no copy vouches, or if more of the
    keeper's sure copies judged `doc` another shot of the scene than vouch for it: a mild crop of
    one shot of a room can be a copy of the other shot, where the two differ only outside it (copy
    seed 9 of the dedup eval)."""
    sure = [member for member in found if vouches(member.verdict) and not apart(doc.id, member.doc.id)]
    vouching = []
    for member in sure:
        if not judge.linked(doc.id, member.doc.id):
            continue
        verdict = judge.judge(doc.id, doc.source, member.doc.id, member.doc.source,
                              float(np.dot(doc.vector, member.doc.vector)), directed=True)  # fmt: skip
        if vouches(verdict):
            vouching.append((member, verdict))
    if not vouching or sum(judge.same_scene(doc.id, member.doc.id) for member in sure) > len(vouching):
        return None
    member, verdict = vouching[0]
    return Member(doc, float(np.dot(keep.vector, doc.vector)), carried(verdict, member, keep))


def other_shot(found: list[Member], shots: list[Doc], judge: Judge, apart,
               witnessed: bool = False) -> tuple[list[Member], list[Member]]:  # fmt: skip
    """(kept, strays) of a keeper's verified images: a part stays unless it is also a part of one of
    `shots` (images judged another shot of the keeper's scene), with better aligned pixels, or a
    copy of one while its own pixels matched the keeper's only within the agreeing keypoints
    (correlation below COPY_CORRELATION). A window where two shots of a room barely differ
    verifies as a part of both, and only the shot it was cut from aligns pixel for pixel (dedup
    eval: a heavy crop of the left motorcycle shot, a collage holding one shot of a room, and a
    screenshot of one, were grouped with the other shot on copy seeds 11, 12, 14 and 16). A collage
    of one shot pasted into the other is a copy of its host and a part of the other that matches
    well: it stays in both. An image `witnessed` (listed only because it holds one of the keeper's
    sure copies, `holds_copy`, never verified against the keeper) gives way to a better copy too,
    whatever its own pixels: a collage, a framed copy of one shot of a room at 0.81, held a copy of
    the other shot at 0.61, in the same window (copy seed 17). A stray is judged again with the
    keepers after this one."""
    if not shots:
        return found, []

    def better_elsewhere(member: Member) -> bool:
        if not member.verdict.is_part:
            return False
        doc, mine = member.doc, member.verdict.correlation or 0.0
        for shot in shots:
            if apart(doc.id, shot.id):
                continue
            verdict = judge.judge(doc.id, doc.source, shot.id, shot.source,
                                  float(np.dot(doc.vector, shot.vector)), directed=True)  # fmt: skip
            rival = verdict.is_part or (verdict.is_copy and (witnessed or mine < COPY_CORRELATION))
            if rival and (verdict.correlation or 0.0) > mine:
                return True
        return False

    kept: list[Member] = []
    strays: list[Member] = []
    for member in found:
        (strays if better_elsewhere(member) else kept).append(member)
    return kept, strays


def seen_in_copies(found: list[Member], judge: Judge, apart) -> tuple[list[Member], list[Member]]:
    """(kept, unseen) of a keeper's verified images: where the keeper has sure copies, a part stays
    only if one of the SEEN_IN surest also holds it. A keeper's crops are in its copies too; a
    collage kept as the largest picture also has as parts the copies of the photo pasted into it,
    which its copies (copies of the photo it was pasted into) do not hold: without this, the two
    photos' copies met in one group."""
    copies = sorted((member for member in found if vouches(member.verdict)),
                    key=lambda member: -(member.verdict.correlation or 0.0))  # fmt: skip
    if not copies:
        return found, []
    witnesses = [member.doc for member in copies[:SEEN_IN]]

    def seen(doc: Doc) -> bool:
        return any(judge.judge(doc.id, doc.source, copy.id, copy.source, float(np.dot(doc.vector, copy.vector))).joins
                   for copy in witnesses if not apart(doc.id, copy.id))  # fmt: skip

    kept: list[Member] = []
    unseen: list[Member] = []
    for member in found:
        (kept if not member.verdict.is_part or seen(member.doc) else unseen).append(member)
    return kept, unseen


def holds_copy(doc: Doc, keep: Doc, members: list[Member], judge: Judge, apart) -> Member | None:
    """`doc` as a member of `keep`'s group when it holds one of the keeper's sure copies whole, judged
    so while candidates were judged, and did not verify against the keeper itself: a collage holds
    the photo pasted into it, and a plain copy of that photo is easier to see in it than a keeper
    that is the photo tilted on a larger canvas, or framed. It lies in the keeper where the copy
    does. None if it holds none."""
    picture = content(members)
    for member in members:
        if not vouches(member.verdict) or not holds(member.verdict.box, picture) or apart(doc.id, member.doc.id):
            continue  # a crop of the keeper is no witness: another shot of the scene holds it too
        if not judge.linked(doc.id, member.doc.id):
            continue
        verdict = judge.judge(doc.id, doc.source, member.doc.id, member.doc.source,
                              float(np.dot(doc.vector, member.doc.vector)), directed=True)  # fmt: skip
        if verdict.is_part and holds(verdict.box):
            return Member(doc, float(np.dot(keep.vector, doc.vector)), carried(verdict, member, keep))
    return None


def carried(verdict: Verdict, member: Member, keep: Doc) -> Verdict:
    """`verdict` against `member`, a copy of `keep`, carried over to `keep`: the reason names the
    copy, and the image lies in the keeper where that copy does."""
    reason = f"{verdict.reason}; judged against {member.doc.id}, a copy of {keep.id}"
    return Verdict(verdict.verdict, reason, verdict.inliers, verdict.correlation, None, member.verdict.box)


def holds_another(members: list[Member], judge: Judge) -> bool:
    """Whether a keeper's verified images are only parts of it, two of them copies of each other:
    it is a collage holding another photo, whose copies they are, and that photo's largest copy is
    the better keeper (the collage then joins its group as the picture that holds it). Kept as the
    keeper, the collage also drew in, as its copies, the copies of the photo it was pasted into."""
    if any(member.verdict.is_copy for member in members):
        return False
    parts = [member.doc.id for member in members]
    return any(judge.copies(a, b) for n, a in enumerate(parts) for b in parts[n + 1 :])


def vouches(verdict: Verdict) -> bool:
    """Whether a verdict is a copy sure enough to carry another image into a group."""
    return verdict.is_copy and (verdict.correlation or 0.0) >= BRIDGE_CORRELATION


def consistent(found: list[Member]) -> tuple[list[Member], list[Member]]:
    """(members, strays) of a keeper's verified images: copies stay; a part stays if it lies mostly
    within a copy's box in the keeper or, with no copies, within the box most other parts lie in
    (a collage's pasted photo, not the picture around it)."""
    copies = [member for member in found if member.verdict.is_copy]
    parts = [member for member in found if member.verdict.is_part]
    if copies:
        anchors = [member.verdict.box for member in copies]
    elif parts:
        anchors = [max((member.verdict.box for member in parts),
                       key=lambda b: sum(within(other.verdict.box, b) for other in parts))]  # fmt: skip
    else:
        return [], []

    def belongs(member: Member) -> bool:
        return member.verdict.is_copy or any(within(member.verdict.box, anchor) for anchor in anchors)

    return [member for member in found if belongs(member)], [member for member in found if not belongs(member)]
