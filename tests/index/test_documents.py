"""The documents the index stores: what is kept when part of an image cannot be read."""

from __future__ import annotations

import logging

import numpy as np

from lookalike.index.documents import Doc
from lookalike.ingest.pipeline import Report


def test_an_unreadable_pixel_size_is_logged_and_the_document_kept(caplog, coffee):
    vector = np.ones(4, dtype=np.float32) / 2
    with caplog.at_level(logging.WARNING, logger="lookalike.index.documents"):
        doc = Doc.of_image("x", vector, "m", b"not an image header", None, None, [])
    assert (doc.width, doc.height) == (None, None) and doc.id == "x"
    assert "the pixel size of x cannot be read" in caplog.text
    sized = Doc.of_image("c", vector, "m", coffee, None, None, [])
    assert (sized.width, sized.height) == (600, 400)


def test_ingest_says_how_many_documents_lack_their_size():
    assert "without their pixel size" not in Report(indexed=3).summary()
    assert "; 2 indexed without their pixel size" in Report(indexed=3, unsized=2).summary()
