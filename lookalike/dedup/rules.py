"""The rules that decide which verified images stay in a keeper's group, each on its own: a copy
that vouches for another, parts seen in the keeper's copies, parts that lie where the picture is,
a collage that holds another photo."""

from __future__ import annotations

import numpy as np

from lookalike.dedup.boxes import content, holds, within
from lookalike.dedup.judge import Judge
from lookalike.index.documents import Doc
from lookalike.verify.verdict import Verdict

BRIDGE_CORRELATION = 0.7  # a copy's aligned pixels must correlate this well to vouch for another (through_copy)
SEEN_IN = 3  # a part must be held by one of its keeper's this many surest copies too (seen_in_copies)


def through_copy(doc: Doc, keep: Doc, found: list[tuple], judge: Judge, apart) -> tuple | None:
    """(doc, cosine, verdict) for an image whose keypoints agree with the keeper's on one transform
    but whose aligned pixels did not (judged `same_scene`), when it was verified, while candidates
    were judged, as a copy of one of the keeper's copies: that copy vouches for the pixels, and
    the image lies in the keeper where the copy does (a screenshot and a letterboxed keeper: their
    frames differ where they overlap; both align with the photo). One hop, copy to copy only: a
    collage is a copy of the photo it was pasted into, and the other photo's copies are parts of
    it, not of that photo. Both verdicts must be copies whose pixels correlate BRIDGE_CORRELATION
    or more (docs/relevance.md says what the bound keeps out).
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
