"""The bundled photos' two halves: what is tuned on one is checked on the other."""

from __future__ import annotations

from lookalike.photos import SAME_SCENE, all_photos, halves, shoot


def test_the_halves_split_by_shoot_and_cover_every_photo_once():
    photos = all_photos()
    tune, held = halves(photos)
    assert not set(tune) & set(held) and set(tune) | set(held) == set(photos)
    assert abs(len(tune) - len(held)) <= 4  # about half each
    for a, b in SAME_SCENE:  # two shots of one scene are never on both sides
        assert shoot(a) == shoot(b) and (a in tune) == (b in tune)
    assert halves(photos) == (tune, held)  # the same every time
