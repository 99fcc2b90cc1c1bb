"""Locust load test of the search-by-image path: the API a site calls, and TorchServe alone.

    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8000 --shape ramp -u 8 -t 60s \
           --ts-host http://127.0.0.1:8080 --ts-model efficientnet_lite0 --csv reports/loadtest/run

Users (name the classes on the command line to run only some, e.g. `... SearchUser`):
  SearchUser   POST /search with real photos (loaded once, rotated per request)
  SimilarUser  GET /similar/{id} on ids that exist (found by searching at test start)
  EmbedUser    POST /predictions/<model> straight to TorchServe (isolates the model server)
Every response is checked (status, JSON shape, dimension, at least one hit) and a failure
says why. Shapes: --shape ramp|steps|spike|soak over -u (peak users) and -t (run time);
--rate R paces the whole test at R requests/s (each user an even share) instead of flat out.
Thresholds --max-fail-ratio, --max-p95-ms, --min-rps set the exit code (1 when broken).
--timeline FILE writes one CSV line per request as it ends (unix time, name, ms, ok, the archive
that embedded a search's query, and the failure's reason): what an operations test splits into
phases (before, during and after a change).
Options may also come from environment variables (docs/loadtest.md); the model server's URL,
model and key default to the settings every other command reads (lookalike.settings).
"""

from __future__ import annotations

import base64
import itertools
import logging
import threading
import time
from pathlib import Path
from typing import ClassVar

from locust import FastHttpUser, LoadTestShape, between, constant_throughput, events, task

from lookalike.loadtest.recorder import Recorder
from lookalike.loadtest.shapes import SHAPES, users_at
from lookalike.loadtest.thresholds import Thresholds, violations
from lookalike.serving.signal import SIGNAL, THRESHOLD
from lookalike.settings import REPORTS_DIR, Settings

logger = logging.getLogger("lookalike.loadtest")


class Shared:
    """Test data loaded once per process at test start."""

    photos: ClassVar[list[bytes]] = []
    ids: ClassVar[list[str]] = []
    dimension: int | None = None
    dimensions: ClassVar[dict] = {}  # model -> the dimension its answers have
    lock = threading.Lock()
    cycle = None

    @classmethod
    def next_photo(cls) -> bytes:
        with cls.lock:
            return next(cls.cycle)


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    """Our options; each default comes from its LOOKALIKE_* variable through lookalike.settings,
    the one reader of them (LOOKALIKE_LOAD_SHAPE for --shape, and so on: README, Configuration)."""
    settings = Settings.from_env()
    group = parser.add_argument_group("Lookalike")
    group.add_argument("--shape", choices=SHAPES, default=settings.load_shape,
                       help="load shape over -u peak users and -t run time (LOOKALIKE_LOAD_SHAPE)")  # fmt: skip
    group.add_argument("--ts-host", default=settings.ts_url, help="TorchServe inference URL for EmbedUser")
    group.add_argument("--ts-model", default=settings.model, help="TorchServe model name")
    group.add_argument("--ts-token", default=settings.ts_token or "", help="TorchServe bearer key")
    group.add_argument("--photos", default=settings.load_photos,
                       help="folder of query images (LOOKALIKE_LOAD_PHOTOS); default: the bundled photos")  # fmt: skip
    group.add_argument("--k", type=int, default=settings.load_k or settings.default_k,
                       help="hits per search (LOOKALIKE_LOAD_K, else LOOKALIKE_DEFAULT_K)")  # fmt: skip
    group.add_argument("--search-weight", type=int, default=settings.search_weight)
    group.add_argument("--similar-weight", type=int, default=settings.similar_weight)
    group.add_argument("--embed-weight", type=int, default=settings.embed_weight)
    group.add_argument("--rate", type=float, default=settings.load_rate,
                       help="requests/s for the whole test, spread over -u users (0: as fast as they go)")  # fmt: skip
    group.add_argument("--signal-urls", default="",
                       help="--shape steps: comma-separated /metrics pages to read the autoscaling signal from "
                            "(default: the API's and the model server's)")  # fmt: skip
    group.add_argument("--signal", default=SIGNAL, help=f"--shape steps: the gauge to judge ({SIGNAL})")
    group.add_argument("--signal-threshold", type=float, default=THRESHOLD,
                       help=f"--shape steps: its documented threshold ({THRESHOLD})")  # fmt: skip
    group.add_argument("--timeline", default="",
                       help="CSV: a line per request as it ends (time, name, ms, ok, archive, reason)")  # fmt: skip
    group.add_argument("--max-fail-ratio", type=float, default=settings.max_fail_ratio)
    group.add_argument("--max-p95-ms", type=float, default=settings.max_p95_ms)
    group.add_argument("--min-rps", type=float, default=settings.min_rps)


@events.init.add_listener
def _configure(environment, **_kwargs) -> None:
    options = environment.parsed_options
    if options is None:
        return
    SearchUser.weight, SimilarUser.weight, EmbedUser.weight = (
        options.search_weight, options.similar_weight, options.embed_weight
    )  # fmt: skip
    # Each user's share of --rate. Computed here because a worker does not know -u: the master sends
    # its custom options (this one included) to every worker, which overwrite the workers' own.
    options.rate_per_user = options.rate / max(1, options.num_users or 1)


def _load_photos(folder: str) -> list[bytes]:
    if folder:
        suffixes = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
        return [p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.suffix.lower() in suffixes]
    from lookalike.photos import all_photos

    return list(all_photos().values())


@events.test_start.add_listener
def _test_start(environment, **_kwargs) -> None:
    """Load the photos once; for SimilarUser, find ids that exist (a search with each of 3 photos)."""
    options = environment.parsed_options
    Shared.photos = _load_photos(options.photos)
    if not Shared.photos:
        raise RuntimeError(f"no photos found in {options.photos!r}")
    Shared.cycle = itertools.cycle(Shared.photos)
    if SimilarUser not in environment.user_classes and SearchUser not in environment.user_classes:
        return
    import requests

    host = (environment.host or "").rstrip("/")
    ids: set[str] = set()
    for photo in Shared.photos[:3]:
        try:
            response = requests.post(f"{host}/search", params={"k": 5}, data=photo,
                                     headers={"Content-Type": "application/octet-stream"}, timeout=60)  # fmt: skip
            if response.ok:
                ids.update(hit["id"] for hit in response.json()["hits"])
                Shared.dimension = response.json().get("dimension")
        except requests.RequestException as exc:
            logger.warning("could not collect ids from %s: %s", host, exc)
            break
    Shared.ids = sorted(ids)
    logger.info("%d photos loaded, %d indexed ids for /similar", len(Shared.photos), len(Shared.ids))


def _check_hits(response) -> None:
    """Mark `response` (a catch_response context) failed with the reason, or leave it passed. Its
    dimension must be its model's (the first answer of a model sets it: a blue/green rollout changes
    the model, and so the dimension, mid-test)."""
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
        return
    try:
        doc = response.json()
    except ValueError:
        response.failure("answer is not JSON")
        return
    hits = doc.get("hits")
    if not isinstance(hits, list) or not hits:
        response.failure(f"no hits in {str(doc)[:200]}")
    elif Shared.dimensions.setdefault(doc.get("model"), doc.get("dimension")) != doc.get("dimension"):
        response.failure(f"dimension {doc.get('dimension')} != {Shared.dimensions[doc.get('model')]} of its model")
    elif not all(-1.0 <= hit.get("similarity", 2) <= 1.0 and "id" in hit for hit in hits):
        response.failure("a hit lacks an id or a similarity in [-1, 1]")


def paced(user) -> float:
    """Seconds to wait before the next task: an even share of --rate for each of the -u users (an
    open-loop rate, e.g. 80 % of capacity for a soak), else a short random think time."""
    options = user.environment.parsed_options
    if options.rate > 0:
        return constant_throughput(options.rate_per_user)(user)
    return _THINK(user)


_THINK = between(0.0, 0.2)


class SearchUser(FastHttpUser):
    """A site visitor searching by an uploaded image."""

    weight = 3
    wait_time = paced

    @task
    def search(self) -> None:
        k = self.environment.parsed_options.k
        headers = {"Content-Type": "application/octet-stream"}
        with self.client.post(f"/search?k={k}", data=Shared.next_photo(), name="POST /search", headers=headers,
                              catch_response=True) as response:  # fmt: skip
            _check_hits(response)


class SimilarUser(FastHttpUser):
    """A visitor clicking "more like this" on an indexed image."""

    weight = 1
    wait_time = paced

    @task
    def similar(self) -> None:
        if not Shared.ids:
            with self.client.get("/healthz", name="GET /similar/[id]", catch_response=True) as response:
                response.failure("no indexed ids: ingest images first (make demo)")
            return
        doc_id = Shared.ids[hash((id(self), self.environment.runner.user_count)) % len(Shared.ids)]
        k = self.environment.parsed_options.k
        with self.client.get(f"/similar/{doc_id}?k={k}", name="GET /similar/[id]", catch_response=True) as response:
            _check_hits(response)


class EmbedUser(FastHttpUser):
    """Straight to TorchServe: the model server's own capacity, without the API and the index."""

    weight = 1
    wait_time = paced

    @task
    def embed(self) -> None:
        options = self.environment.parsed_options
        headers = {"Content-Type": "application/octet-stream"}
        if options.ts_token:
            headers["Authorization"] = f"Bearer {options.ts_token}"
        # An absolute URL: -H names the API host for every user class, TorchServe is elsewhere.
        url = f"{options.ts_host.rstrip('/')}/predictions/{options.ts_model}"
        with self.client.post(url, data=Shared.next_photo(), headers=headers,
                              name="POST /predictions/[model]", catch_response=True) as response:  # fmt: skip
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            doc = response.json()
            size = len(base64.b64decode(doc.get("embedding", ""))) // 4 if doc.get("encoding") == "base64" else -1
            if size != doc.get("dimension") or (Shared.dimension and size != Shared.dimension):
                response.failure(f"embedding has {size} floats, dimension says {doc.get('dimension')}")


class Steps:
    """--shape steps: the recorder of users, requests and signals (lookalike.loadtest.recorder)."""

    recorder: Recorder | None = None


@events.test_start.add_listener
def _record_steps(environment, **_kwargs) -> None:
    options = environment.parsed_options
    if options.shape != "steps" or environment.runner is None or type(environment.runner).__name__ == "WorkerRunner":
        return
    import gevent
    import requests

    urls = [url for url in options.signal_urls.split(",") if url] or [
        f"{(environment.host or '').rstrip('/')}/metrics",
        f"{options.ts_host.split(',')[0].rstrip('/')}/metrics",
    ]
    Steps.recorder = Recorder(urls)
    gevent.spawn(Steps.recorder.scrape, lambda url: requests.get(url, timeout=2).text)


@events.request.add_listener
def _count(response_time, exception=None, **_kwargs) -> None:
    if Steps.recorder is not None:
        Steps.recorder.request(response_time, exception is not None)


class Timeline:
    """--timeline: the open CSV file, written as each request ends (one process: no workers)."""

    handle = None


@events.test_start.add_listener
def _open_timeline(environment, **_kwargs) -> None:
    path = environment.parsed_options.timeline if environment.parsed_options else ""
    if path:
        Timeline.handle = open(path, "a", buffering=1, newline="")  # noqa: SIM115  (closed at test stop)


@events.request.add_listener
def _timeline(name, response_time, response=None, exception=None, **_kwargs) -> None:
    if Timeline.handle is None:
        return
    archive = ""
    if exception is None and name == "POST /search" and response is not None:
        try:
            archive = response.json().get("archive") or ""
        except (ValueError, AttributeError):
            archive = ""
    reason = str(exception or "").replace("\n", " ").replace(",", ";")[:200]
    Timeline.handle.write(f"{time.time():.3f},{name},{response_time:.1f},{int(exception is None)},{archive},{reason}\n")


@events.test_stop.add_listener
def _close_timeline(**_kwargs) -> None:
    if Timeline.handle is not None:
        Timeline.handle.close()
        Timeline.handle = None


@events.test_stop.add_listener
def _steps_report(environment, **_kwargs) -> None:
    if Steps.recorder is not None:
        options = environment.parsed_options
        out = REPORTS_DIR / "loadtest" / "steps.json"
        print("\nstep load: each step's throughput, latency and signals (second half of the step)", flush=True)
        print(Steps.recorder.finish(options.signal, options.signal_threshold, out), flush=True)
        Steps.recorder = None


class NamedShape(LoadTestShape):
    """--shape NAME over -u (peak users), -r (spawn rate) and -t (run time, default 60 s)."""

    use_common_options = True

    def tick(self):
        options = self.runner.environment.parsed_options
        duration = options.run_time or 60
        users = users_at(options.shape, self.get_run_time(), options.num_users or 1, duration)
        if users is None:
            return None
        if Steps.recorder is not None:
            Steps.recorder.user_count(users)
        return users, options.spawn_rate or max(1, users)


@events.quitting.add_listener
def _gate(environment, **_kwargs) -> None:
    """Set the exit code from the thresholds, and say which broke."""
    options = environment.parsed_options
    total = environment.stats.total
    limits = Thresholds(options.max_fail_ratio, options.max_p95_ms, options.min_rps)
    broken = violations(limits, total.fail_ratio, total.get_response_time_percentile(0.95) or 0.0,
                        total.total_rps, total.num_requests)  # fmt: skip
    if broken:
        logger.error("THRESHOLDS BROKEN: %s", "; ".join(broken))
        environment.process_exit_code = 1
    else:
        logger.info("thresholds met: fail ratio <= %.2f%%, p95 <= %.0f ms, rps >= %.2f",
                    100 * limits.max_fail_ratio, limits.max_p95_ms, limits.min_rps)  # fmt: skip
        environment.process_exit_code = 0
