"""The search page, driven in headless Chromium (Debian's `chromium`, through Playwright's
executable_path; browser downloads fail on our machines). Screenshots go to reports/page/.

The page runs over the stand-in model server on both index backends (fast tier) and over real
TorchServe on the embedded index (slow): that run's scores are the model's, and its first
screenshot is the one the README shows (docs/page.png)."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest
import requests

from lookalike.api import process
from lookalike.settings import REPORTS_DIR, Settings
from tests.api.conftest import build_catalogue

playwright_api = pytest.importorskip("playwright.sync_api")
SHOTS = REPORTS_DIR / "page"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.fail("Debian's chromium is needed for the page test: apt-get install -y chromium (.ci/run does)")
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=["standin-embedded", pytest.param("standin-opensearch",
                marks=pytest.mark.opensearch), pytest.param("server-embedded", marks=pytest.mark.slow)])  # fmt: skip
def site(request, photos, interiors, tmp_path_factory):
    """(the settings of a catalogue behind this model server and backend, a name for screenshots)"""
    server, backend = request.param.split("-")
    ts_url = request.getfixturevalue(server).inference_url
    for settings in build_catalogue(request, ts_url, backend, photos, interiors, tmp_path_factory):
        yield settings, request.param


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


# Drop or paste a file the way a browser delivers one: a DataTransfer holding a File (here the
# coffee photo's own thumbnail, fetched from the API).
DELIVER = """async (gesture) => {
  const blob = await (await fetch('/images/coffee/thumbnail')).blob();
  const data = new DataTransfer();
  data.items.add(new File([blob], gesture + '.jpg', {type: 'image/jpeg'}));
  const event = gesture === 'drop'
    ? new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true})
    : new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});
  (gesture === 'drop' ? document.getElementById('drop') : document).dispatchEvent(event);
}"""


def shot(page, name: str) -> None:
    """A full-page screenshot once every thumbnail has loaded."""
    page.wait_for_function("() => [...document.images].every((img) => img.hidden || img.complete)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_search_filter_more_like_this_per_category_and_a_text_file(site, page, photos, tmp_path):
    settings, name = site
    expect = playwright_api.expect
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(photos["coffee"])
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    with process.ApiThread(settings) as running:
        page.goto(running.url)
        expect(page.locator("#category option")).to_have_count(3)  # all + the two categories with counts
        expect(page.locator("#category")).to_contain_text("interiors (12)")

        page.set_input_files("#file", str(coffee))
        hits = page.locator("#results .hit")
        expect(hits.first).to_be_visible()
        expect(hits.first.locator(".name")).to_have_text("coffee.jpg")
        expect(hits.first.locator(".score")).to_have_text(re.compile(r"^100\.0 %$|^99\.\d %$"))
        expect(page.locator("#status")).to_contain_text("look-alikes for your photo")
        expect(page.locator("#preview")).to_be_visible()
        page.wait_for_function(
            "() => { const img = document.querySelector('#results .hit img');"
            " return img && img.complete && img.naturalWidth > 0; }"
        )  # its thumbnail loaded
        shot(page, f"{name}-1-search")

        page.select_option("#category", "interiors")
        expect(page.locator("#status")).to_contain_text("look-alikes")
        expect(hits.first.locator(".category")).to_have_text("interiors")
        categories = hits.locator(".category").all_inner_texts()
        assert categories and set(categories) == {"interiors"}
        shot(page, f"{name}-2-category")

        first = hits.first.locator(".name").inner_text()
        hits.first.locator(".more").click()
        expect(page.locator("#status")).to_contain_text(f"look-alikes like {first}")
        assert first not in hits.locator(".name").all_inner_texts()  # more like this excludes itself
        shot(page, f"{name}-3-more-like-this")

        page.select_option("#category", "")
        page.check("input[value=per-category]")
        page.set_input_files("#file", str(coffee))
        groups = page.locator("#results .group")
        expect(groups).to_have_count(2)
        expect(groups.locator("h2")).to_contain_text(["interiors", "subjects"])
        expect(page.locator("#results .group .score").first).to_contain_text("%")
        shot(page, f"{name}-4-per-category")

        for gesture in ("drop", "paste"):  # the same photo dropped on the page, then pasted into it
            page.check("input[value=hits]")
            page.evaluate(DELIVER, gesture)
            expect(page.locator("#status")).to_contain_text("look-alikes for your photo")
            expect(hits.first.locator(".name")).to_have_text("coffee.jpg")
            expect(page.locator("#preview")).to_have_attribute("alt", f"Your photo: {gesture}.jpg")

        page.set_input_files("#file", str(notes))
        expect(page.locator("#status")).to_have_class(re.compile("error"))
        expect(page.locator("#status")).to_contain_text("not an image")
        expect(page.locator("#status")).to_contain_text("415")
        shot(page, f"{name}-5-not-an-image")


def test_a_late_answer_does_not_overwrite_a_newer_search(api, page, photos, tmp_path):
    """Two searches in flight: the photo's request is held back (a Playwright route) while a text
    file's 415 comes back; then the held request is answered with an empty result. The page
    aborted the older search when the newer one started, so that late answer never reaches the
    screen: the 415 stays. (CI once saw exactly this race: a paste's results landing after the
    text file's error.) Whether the browser reports the held request failed or finished is its
    own affair (it varied between runs); what is asserted is the page."""
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(photos["coffee"])
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    expect = playwright_api.expect
    held = []
    with api() as running:
        page.goto(running.url)
        page.route("**/search?*", lambda route: held.append(route))
        page.set_input_files("#file", str(coffee))
        for _ in range(200):  # until the route has caught the request (handlers run during waits)
            if held:
                break
            page.wait_for_timeout(50)
        assert len(held) == 1
        page.unroute("**/search?*")
        page.set_input_files("#file", str(notes))
        expect(page.locator("#status")).to_contain_text("415")
        with contextlib.suppress(playwright_api.Error):  # the browser may have dropped it already
            held[0].fulfill(status=200, content_type="application/json", body='{"hits": [], "took_ms": 1}')
        page.wait_for_timeout(500)  # time for a late answer to be drawn (the old page drew it)
        page.evaluate("() => fetch('/healthz')")  # and one more round trip
        expect(page.locator("#status")).to_have_class(re.compile("error"))
        expect(page.locator("#status")).to_contain_text("415")
        assert "look-alike" not in page.locator("#status").inner_text()


def test_keyboard_and_phone_width(api, browser, photos, tmp_path):
    """At phone width: no sideways scrolling; the file input is the first stop of the tab order
    (a native file input: Space or Enter opens the chooser), and "more like this" works from the
    keyboard alone."""
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(photos["coffee"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        with api() as running:
            phone.goto(running.url)
            phone.keyboard.press("Tab")
            assert phone.evaluate("() => [document.activeElement.id, document.activeElement.type]") == ["file", "file"]
            phone.set_input_files("#file", str(coffee))
            playwright_api.expect(phone.locator("#status")).to_contain_text("look-alikes for your photo")
            for _ in range(30):  # tab through the controls to the first hit's button
                phone.keyboard.press("Tab")
                if phone.evaluate("() => document.activeElement.classList.contains('more')"):
                    break
            label = phone.evaluate("() => document.activeElement.getAttribute('aria-label')")
            assert label == "More like coffee.jpg"
            phone.keyboard.press("Enter")
            playwright_api.expect(phone.locator("#status")).to_contain_text("look-alikes like coffee.jpg")
            assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
            shot(phone, "phone")
    finally:
        context.close()


def test_a_screenshot_for_the_readme_exists_after_the_run():
    """The README shows docs/page.png: reports/page/server-embedded-1-search.png, reduced, copied by
    hand when the page changes."""
    assert Path(__file__).resolve().parents[2].joinpath("docs", "page.png").is_file()


def test_the_matching_region_is_outlined_on_its_hit(browser, standin, photos, tmp_path):
    """An index with region vectors (grid2): the coffee photo pasted over a quadrant of another is
    found by that quadrant, and the page draws its box over the top-left quarter of the thumbnail."""
    from tests.api.test_regions_api import KEY, composite

    settings = Settings(ts_url=standin.inference_url, data_dir=tmp_path / "index", regions="grid2", api_key=KEY,
                        thumb_dir=tmp_path / "thumbs")  # fmt: skip
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(photos["coffee"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    with process.ApiThread(settings) as running:
        for name, data in (("collage", composite(photos)), ("chelsea", photos["chelsea"])):
            assert requests.put(f"{running.url}/images/{name}", data=data, timeout=60,
                                headers={"Authorization": f"Bearer {KEY}"}).status_code == 201  # fmt: skip
        page.goto(running.url)
        page.set_input_files("#file", str(coffee))
        first = page.locator("#results .hit").first
        playwright_api.expect(first).to_have_attribute("data-id", "collage")
        mark = first.locator(".region")
        playwright_api.expect(mark).to_be_visible()
        frame, box = first.locator(".frame").bounding_box(), mark.bounding_box()
        assert frame and box
        # The thumbnail (3:2) sits letterboxed in the 4:3 frame; the box covers its top-left quarter.
        image_height = frame["width"] * 2 / 3
        top = frame["y"] + (frame["height"] - image_height) / 2
        assert abs(box["x"] - frame["x"]) < 4 and abs(box["y"] - top) < 4
        assert abs(box["width"] - frame["width"] / 2) < 6 and abs(box["height"] - image_height / 2) < 6
        shot(page, "region-outline")
    context.close()


def test_review_duplicates_accept_keep_another_and_not_duplicates(browser, standin, photos, tmp_path):
    """The review page over a real `lookalike dedup` run (the CLI, in its own process): three copy
    groups; one accepted with its suggested keeper, one kept under another image, one marked not
    duplicates; each leaves the list at once, and the decided view shows what was chosen."""
    from PIL import Image

    from tests.api.test_duplicates import AUTH, dedup_cli
    from tests.verify.test_verified_dedup import jpeg

    settings = Settings(ts_url=standin.inference_url, model="efficientnet_lite0", data_dir=tmp_path / "index",
                        api_key=AUTH["Authorization"].split()[1], thumb_dir=tmp_path / "thumbs")  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    expect = playwright_api.expect
    with process.ApiThread(settings) as running:
        for name in ("coffee", "chelsea", "rocket"):
            img = Image.open(io.BytesIO(photos[name])).convert("RGB")
            for suffix, copy in (("", img), ("-small", img.resize((img.width // 2, img.height // 2)))):
                put = requests.put(f"{running.url}/images/{name}{suffix}", data=jpeg(copy), headers=AUTH, timeout=60)
                assert put.status_code == 201, put.text
        page.goto(f"{running.url}/duplicates")
        expect(page.locator("#run")).to_contain_text("No de-duplication run yet")
        dedup_cli(settings, tmp_path / "duplicates.json")
        page.goto(f"{running.url}/duplicates#key={settings.api_key}")
        page.reload()  # the same page with a new hash: reload it to read the run
        groups = page.locator(".dup-group")
        expect(groups).to_have_count(3)
        expect(page.locator("#run")).to_contain_text("3 to review")
        first = groups.first
        expect(first.locator(".hit.keeper .role")).to_have_text("suggested keeper")
        expect(first.locator(".hit").nth(1).locator(".size")).to_contain_text(" × ")
        expect(first.locator(".hit").nth(1).locator(".verdict")).to_contain_text("copy")
        shot(page, "duplicates-1-review")

        keeper = first.locator(".hit.keeper").get_attribute("data-id")
        first.locator(".accept").click()
        expect(page.locator("#status")).to_contain_text("the others are its duplicates")
        expect(groups).to_have_count(2)
        second_small = groups.first.locator(".hit").nth(1)
        small_id = second_small.get_attribute("data-id")
        second_small.locator(".keep").click()
        expect(groups).to_have_count(1)
        groups.first.locator(".apart").click()
        expect(page.locator("#status")).to_contain_text("not duplicates")
        expect(groups).to_have_count(0)
        expect(page.locator("#run")).to_contain_text("0 to review, 2 kept")

        page.select_option("#show", "decided")
        expect(groups).to_have_count(2)
        kept = groups.locator(".hit.keeper").evaluate_all("(nodes) => nodes.map((node) => node.dataset.id)")
        assert sorted(kept) == sorted([keeper, small_id])
        shot(page, "duplicates-2-decided")
    context.close()


def test_the_page_verifies_by_default_and_its_switch_turns_it_off(browser, standin, photos, tmp_path):
    """Unasked, the page's search is verified: each hit shows its verdict, a copy its box. With
    "Verify copies" switched off it asks /search?verify=false and shows none."""
    from tests.api.test_duplicates import AUTH

    settings = Settings(ts_url=standin.inference_url, model="efficientnet_lite0", data_dir=tmp_path / "index",
                        api_key=AUTH["Authorization"].split()[1], thumb_dir=tmp_path / "thumbs")  # fmt: skip
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(photos["coffee"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    with process.ApiThread(settings) as running:
        for name in ("coffee", "chelsea", "rocket"):
            assert requests.put(f"{running.url}/images/{name}", data=photos[name], headers=AUTH,
                                timeout=60).status_code == 201  # fmt: skip
        page.goto(running.url)
        asked = []
        page.on("request", lambda request: asked.append(request.url))
        assert page.is_checked("#verify")
        page.set_input_files("#file", str(coffee))
        first = page.locator("#results .hit").first
        playwright_api.expect(first.locator(".verdict")).to_have_text("copy")
        playwright_api.expect(page.locator("#results .hit").nth(1).locator(".verdict")).to_have_text("different")
        assert not any("verify=" in url for url in asked)  # the API's default
        shot(page, "verify-switch")
        page.uncheck("#verify")
        playwright_api.expect(page.locator("#results .hit .verdict:not([hidden])")).to_have_count(0)
        assert any("verify=false" in url for url in asked)
    context.close()
