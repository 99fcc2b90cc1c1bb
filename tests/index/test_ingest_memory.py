"""Ingest's bounded-memory behaviour, fast: items never hold bytes, given ids are checked before any
download, an image met twice in one run is written once (stand-in model server, embedded index)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lookalike.index.embedded import EmbeddedIndex
from lookalike.ingest import sources
from lookalike.ingest.pipeline import Ingestor
from lookalike.ingest.sources import Item
from lookalike.serving.client import ModelClient
from lookalike.settings import Settings
from tests.conftest import LITE


class PhotoServer:
    """Serves the given photos at /<name>.jpg and counts the downloads."""

    def __init__(self, photos: dict[str, bytes]) -> None:
        self.photos, self.downloads = photos, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.strip("/").removesuffix(".jpg")
                outer.downloads.append(name)
                body = outer.photos[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def ingestor(standin, tmp_path):
    settings = Settings(ts_url=standin.inference_url, model=LITE, data_dir=tmp_path)
    client = ModelClient.from_settings(settings)
    info = client.info()
    client.close()
    index = EmbeddedIndex(tmp_path, "t", info.model, info.dimension)
    yield Ingestor(settings, index, info, concurrency=2, chunk=2)
    index.close()


def test_a_resumed_url_ingest_with_ids_downloads_only_what_is_missing(ingestor, photos):
    chosen = {name: photos[name] for name in ("coffee", "chelsea", "rocket", "astronaut")}
    server = PhotoServer(chosen)
    try:
        items = [Item(source=f"{server.url}/{name}.jpg", id=name) for name in chosen]
        first = ingestor.run(items[:2], progress=False)
        assert (first.indexed, first.unchanged, first.failed) == (2, 0, 0)
        server.downloads.clear()
        again = ingestor.run(items, progress=False)
        assert (again.indexed, again.unchanged, again.failed) == (2, 2, 0)
        assert sorted(server.downloads) == ["astronaut", "rocket"]  # the known two were never fetched
    finally:
        server.close()


def test_the_same_image_twice_in_one_run_is_written_once(ingestor, photos, tmp_path):
    for name in ("a", "b", "c"):  # three files, one picture: one id (its SHA-256)
        (tmp_path / f"{name}.jpg").write_bytes(photos["coffee"])
    (tmp_path / "d.jpg").write_bytes(photos["chelsea"])
    report = ingestor.run(sources.from_folder(tmp_path), progress=False)
    assert (report.indexed, report.unchanged, report.failed) == (2, 2, 0)
    assert ingestor.index.count() == 2


def test_items_say_where_an_image_is_and_never_hold_its_bytes(tmp_path, photos):
    (tmp_path / "kitchens").mkdir()
    (tmp_path / "kitchens" / "one.jpg").write_bytes(photos["coffee"])
    (tmp_path / "notes.txt").write_text("not an image")
    items = list(sources.from_folder(tmp_path))
    assert [(item.category, item.id) for item in items] == [("kitchens", None)]
    assert not hasattr(items[0], "data")
    assert items[0].doc_id(sources.read(items[0], 10_000_000)) == items[0].doc_id(photos["coffee"])
    with pytest.raises(sources.SourceUnreadable, match="limit is 10"):
        sources.read(items[0], 10)
