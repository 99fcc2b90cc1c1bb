"""Verified matches: is image A a copy of image B, a part of it, another shot of the same scene, or
different? A cosine proposes candidates; local features and a geometric model decide.

    features.extract(bytes) -> Features      SIFT on a 512-px frame, plus a small gray picture
    verdict.verify(a, b, cosine=None) -> Verdict   copy | part | same_scene | different, with why

Data flows one way: bytes -> Features -> (matches -> transform -> aligned pixels) -> Verdict.
"""

from lookalike.verify.features import Features, extract
from lookalike.verify.verdict import Verdict, verify

__all__ = ["Features", "Verdict", "extract", "verify"]
