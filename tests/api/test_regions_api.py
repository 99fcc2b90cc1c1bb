"""Region vectors through the API (fast tier: the stand-in model server cuts regions with the
handler's own code; relevance with real models is tested against TorchServe)."""

from __future__ import annotations

import io

import requests
from PIL import Image

from lookalike.api import process
from lookalike.settings import Settings

KEY = "write-key"


def jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def composite(photos: dict[str, bytes]) -> bytes:
    """The rocket photo with the coffee photo pasted over its top-left quadrant."""
    canvas = Image.open(io.BytesIO(photos["rocket"])).convert("RGB").resize((600, 400))
    canvas.paste(Image.open(io.BytesIO(photos["coffee"])).convert("RGB").resize((300, 200)), (0, 0))
    return jpeg(canvas)


def test_an_image_pasted_into_another_is_found_by_its_region_with_the_box(standin, photos, tmp_path):
    settings = Settings(ts_url=standin.inference_url, data_dir=tmp_path / "index", regions="grid2", api_key=KEY,
                        thumb_dir=tmp_path / "thumbs", home=tmp_path)  # fmt: skip
    auth = {"Authorization": f"Bearer {KEY}"}
    with process.ApiThread(settings) as api:
        for name, data in (("collage", composite(photos)), ("chelsea", photos["chelsea"])):
            put = requests.put(f"{api.url}/images/{name}", data=data, headers=auth, timeout=60)
            assert put.status_code == 201, put.text
        hits = requests.post(f"{api.url}/search?k=2&verify=false", data=photos["coffee"], timeout=60).json()["hits"]
        assert hits[0]["id"] == "collage" and hits[0]["box"] == [0.0, 0.0, 0.5, 0.5]  # the region's window
        assert hits[0]["similarity"] > 0.9
        whole = requests.post(f"{api.url}/search?k=1&verify=false", data=photos["chelsea"], timeout=60).json()
        assert whole["hits"][0]["id"] == "chelsea" and "box" not in whole["hits"][0]  # the whole image matched best
        verified = requests.post(f"{api.url}/search?k=2", data=photos["coffee"], timeout=60).json()["hits"][0]
        assert verified["id"] == "collage" and verified["verdict"] == "part"  # where it lies, found by its keypoints
        assert max(abs(a - b) for a, b in zip(verified["box"], [0.0, 0.0, 0.5, 0.5], strict=True)) < 0.01
        assert requests.delete(f"{api.url}/images/collage", headers=auth, timeout=60).status_code in (200, 204)
        hits = requests.post(f"{api.url}/search?k=2", data=photos["coffee"], timeout=60).json()["hits"]
        assert "collage" not in [hit["id"] for hit in hits]
