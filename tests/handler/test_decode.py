"""Decoding real-world uploads: orientation, modes, animation, and every refusal with its reason."""

from __future__ import annotations

import numpy as np
import pytest
from lookalike_handler.decode import Limits, decode_image
from lookalike_handler.errors import ImageError, ImageTooLarge
from PIL import Image

from tests.conftest import encode
from tests.corpus import bad_inputs


def pixel(img: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    return img.getpixel(xy)


def test_exif_orientation_is_applied():
    # 60x30: left half red, right half blue; orientation 6 means "rotate 90 degrees clockwise to view".
    img = Image.new("RGB", (60, 30), "red")
    img.paste((0, 0, 255), (30, 0, 60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (30, 60)
    top, bottom = np.asarray(out)[5, 15], np.asarray(out)[55, 15]
    assert top[0] > 200 and top[2] < 60  # the red half is on top once upright
    assert bottom[2] > 200 and bottom[0] < 60


def test_greyscale_becomes_rgb():
    out = decode_image(encode(Image.new("L", (32, 32), 77), "PNG"))
    assert out.mode == "RGB" and pixel(out, (3, 3)) == (77, 77, 77)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(mode):
    img = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    img.paste((255, 0, 0, 0), (0, 0, 16, 32))  # left half fully transparent
    out = decode_image(encode(img.convert(mode), "PNG"))
    assert out.mode == "RGB"
    assert pixel(out, (4, 4)) == (255, 255, 255)
    assert pixel(out, (28, 4)) == ((255, 0, 0) if mode == "RGBA" else (76, 76, 76))


def test_palette_with_transparency_is_composited_on_white():
    img = Image.new("P", (32, 32), 1)
    img.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    img.paste(0, (0, 0, 16, 32))
    out = decode_image(encode(img, "GIF", transparency=0))
    assert pixel(out, (4, 4)) == (255, 255, 255)
    assert pixel(out, (28, 4)) == (0, 200, 0)


def test_cmyk_jpeg_becomes_rgb():
    out = decode_image(encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = pixel(out, (16, 16))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16_bit_greyscale_is_scaled_not_clipped():
    array = np.zeros((32, 32), dtype=np.uint16)
    array[:, 16:] = 65535
    array[:16, :16] = 32896
    out = decode_image(encode(Image.fromarray(array), "PNG"))
    assert pixel(out, (24, 4)) == (255, 255, 255)
    assert pixel(out, (4, 4)) == (128, 128, 128)
    assert pixel(out, (4, 24)) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_uses_first_frame(fmt):
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(__import__("io").BytesIO(data)).n_frames == 3
    r, g, b = pixel(decode_image(data), (16, 16))
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("name,body,status,words", bad_inputs(encode(Image.new("RGB", (64, 48), "teal"), "JPEG")))
def test_bad_input_is_refused_with_reason(name, body, status, words):
    with pytest.raises(ImageError) as caught:
        decode_image(body)
    assert caught.value.status == status, caught.value.reason
    assert words.lower() in caught.value.reason.lower()


def test_byte_limit():
    data = encode(Image.new("RGB", (64, 64), "red"), "PNG")
    with pytest.raises(ImageTooLarge, match="bytes"):
        decode_image(data, Limits(max_bytes=len(data) - 1))
    assert decode_image(data, Limits(max_bytes=len(data))).size == (64, 64)


def test_pixel_limit_is_configurable():
    data = encode(Image.new("RGB", (100, 100), "red"), "PNG")
    with pytest.raises(ImageTooLarge, match="10000 pixels"):
        decode_image(data, Limits(max_pixels=9999))
    assert decode_image(data, Limits(max_pixels=10000)).size == (100, 100)


def test_real_photos_decode(photos):
    for name, data in photos.items():
        out = decode_image(data)
        assert out.mode == "RGB" and min(out.size) >= 16, name
