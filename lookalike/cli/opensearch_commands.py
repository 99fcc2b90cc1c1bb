"""`lookalike opensearch start|stop|status|install|env|connect`: the local OpenSearch nodes (make
opensearch), plain, secured (--secure), with ml-commons (--ml) or 3.5 (--version 3.5.0), each kind in
its own folder on its own port."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from lookalike import opensearch_node as osn
from lookalike.cli.common import guarded, subparser
from lookalike.errors import NodeError, SettingsError
from lookalike.index import opensearch_client, opensearch_index
from lookalike.ml_connect import connect
from lookalike.ml_connect.plan import Plan
from lookalike.photos import subject_photos
from lookalike.serving.client import ModelClient, read_key_file
from lookalike.settings import Settings


def client_environment(node: osn.LocalNode, home: Path) -> dict[str, str]:
    """The LOOKALIKE_OPENSEARCH_* settings that reach the running node (as `lookalike` if secured)."""
    if not node.config.secure:
        return {"LOOKALIKE_OPENSEARCH_URL": node.url}
    return osn.security.client_environment(node.url, home)


def add(sub: argparse._SubParsersAction) -> None:
    p = subparser(sub, "opensearch", "local OpenSearch 2.19 (or 3.5) + k-NN nodes from Maven Central, each kind in "
                  "its own folder and port: plain run/opensearch :9200, --secure run/opensearch-secure :9201, --ml "
                  "run/opensearch-ml :9202, --version 3.5.0 run/opensearch-3.5.0 :9203",
                  "lookalike opensearch start            # install on first use, start, wait for yellow/green",
                  "OPENSEARCH_PORT=9210 lookalike opensearch start",
                  "lookalike opensearch start --version 3.5.0",
                  "lookalike opensearch status           # every node made, and which are running",
                  "lookalike opensearch stop             # every running node (or the one its flag names)",
                  "LOOKALIKE_OPENSEARCH_URL=http://127.0.0.1:9200 lookalike demo",
                  "lookalike opensearch start --secure",
                  "lookalike opensearch start --ml && lookalike opensearch connect   # image search inside OpenSearch",
                  "eval \"$(lookalike opensearch env)\"; lookalike demo   # every command then uses it")  # fmt: skip
    p.add_argument(
        "action",
        choices=["start", "stop", "status", "install", "env", "connect"],
        help='env: the running node\'s client settings as export lines: eval "$(lookalike opensearch env)"; '
        "connect: make the cluster at LOOKALIKE_OPENSEARCH_URL embed images with our TorchServe (ml-commons "
        "connector, model, ingest and search pipelines; idempotent)",
    )
    p.add_argument("--secure", action="store_true",
                   help="start: a secured node (security plugin: TLS on HTTP and transport, a local CA, users `admin` "
                        "and `lookalike`, a least-privilege role); a node made so stays secured")  # fmt: skip
    p.add_argument("--ml", action="store_true", dest="with_ml",
                   help="start/install: with ml-commons and job-scheduler (2.19.1; a 363 MB download once) and the "
                        "settings a model server on loopback needs; then `lookalike opensearch connect`; a node made "
                        "so keeps them")  # fmt: skip
    p.add_argument("--version", choices=list(osn.RELEASES), dest="opensearch_version",
                   help=f"start/install: the OpenSearch release (default {osn.DEFAULT_VERSION}; 3.x runs on Java 21+, "
                        "found by version; a node keeps the version it was made with)")  # fmt: skip
    p.add_argument("--index-pattern", action="append", dest="index_patterns",
                   help="--secure: the indices and aliases the `lookalike` user may work on (repeatable; lookalike*, "
                        "fixed when the node is first made)")  # fmt: skip
    p.add_argument("--port", type=int, help="HTTP port (OPENSEARCH_PORT; else the port the node last ran on, else "
                   f"its kind's: {', '.join(f'{kind.name} {kind.port}' for kind in osn.KINDS)})")  # fmt: skip
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for yellow/green (180)")
    p.add_argument("--dir", type=Path,
                   help="the node's config, data and logs (default: its kind's folder under run/; as root it must be "
                        f"reachable by the node's user {osn.USER})")  # fmt: skip
    connect = p.add_argument_group(
        "connect (the cluster at LOOKALIKE_OPENSEARCH_URL, as its admin; TorchServe at "
        "LOOKALIKE_TS_URL, its key from LOOKALIKE_TS_TOKEN or LOOKALIKE_TS_KEY_FILE)"
    )
    connect.add_argument("--model-server-url", help="TorchServe's inference address as the OpenSearch nodes reach it "
                         "(default LOOKALIKE_TS_URL)")  # fmt: skip
    connect.add_argument("--model", help="TorchServe model name (LOOKALIKE_MODEL)")
    connect.add_argument("--name", default="", help="the connector's and model's name (lookalike-<model>)")
    connect.add_argument("--ingest-pipeline", default="lookalike-image", help="(lookalike-image)")
    connect.add_argument("--search-pipeline", default="lookalike-image-search", help="(lookalike-image-search)")
    connect.add_argument("--image-field", default="image",
                         help="the document field holding the base64 image, and the ext.ml_inference key of a search "
                              "(image)")  # fmt: skip
    connect.add_argument("--vector-field", default="vector", help="the knn_vector field the pipeline fills (vector)")
    connect.add_argument("--create-index", metavar="NAME",
                         help="also create index NAME: our mapping, the image kept out of _source, the ingest "
                              "pipeline as its default (its dimension asked of TorchServe, dry run too)")  # fmt: skip
    connect.add_argument("--dry-run", action="store_true",
                         help="print the requests (key masked); send nothing to OpenSearch")  # fmt: skip
    p.set_defaults(run=guarded(run))


def run(args: argparse.Namespace) -> int:
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731 - progress to stderr, the URL to stdout
    if args.action == "connect":
        return ml_connect(args, say)
    if args.action == "install":
        print(osn.prepare(say, args.secure, args.opensearch_version or osn.DEFAULT_VERSION, args.with_ml)[0].home)
        return 0
    named = args.dir is not None or args.secure or args.with_ml or args.opensearch_version
    if not named and args.action in ("stop", "status", "env"):
        return every_node(args.action, say)
    home = args.dir or osn.kind_of(args.secure, args.with_ml, args.opensearch_version).home
    made_secure = (home / osn.security.SECRETS).is_file()
    if args.action == "start" and made_secure != args.secure and (home / "data").is_dir():
        raise NodeError(f"the node in {home} was made {'secured' if made_secure else 'plain'}; start it "
                        f"{'with' if made_secure else 'without'} --secure, or give another --dir")  # fmt: skip
    secure = args.secure if args.action == "start" else made_secure
    # with_ml None: as the node was made (local_node reads it from the node's folder)
    node = osn.local_node(home, http_port=args.port, installed=args.action == "start", say=say, secure=secure,
                          version=args.opensearch_version, with_ml=args.with_ml or None)  # fmt: skip
    if args.index_patterns:
        node.config = dataclasses.replace(node.config, index_patterns=tuple(args.index_patterns))
    if args.action == "env":
        if not node.alive():
            raise NodeError(f"OpenSearch is not running from {home} (lookalike opensearch start)")
        for name, value in client_environment(node, home).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if args.action == "start":
        if node.alive():
            node.wait_ready(args.timeout)
            say(f"OpenSearch already running (pid {node.pid()})")
        else:
            say(f"starting OpenSearch on {node.url} (Java {node.java_home}; data and logs in {node.config.home}) ...")
            node.start(timeout=args.timeout)
        if secure:
            say(
                f"secured: user {osn.security.USER}; its password in {home / osn.security.SECRETS} (with the "
                f'admin\'s); CA {node.ca_file}. Every command then uses it after: eval "$(lookalike opensearch env)"'
            )
        print(node.url)
        return 0
    if args.action == "stop":
        if not node.alive():
            say("OpenSearch is not running")
            return 0
        node.stop()
        say("OpenSearch stopped")
        return 0
    state = node.health() if node.alive() else None
    if state is None:
        say(f"OpenSearch is not running at {node.url}")
        return 1
    print(json.dumps({"url": node.url, "pid": node.pid(), **state}, indent=2))
    return 0 if state.get("status") in ("yellow", "green") else 1


def every_node(action: str, say) -> int:
    """stop, status or env with no flag naming a node: every node made in its kind's default folder."""
    made = [(kind, osn.local_node(kind.home, installed=False)) for kind in osn.kinds.existing()]
    running = [(kind, node) for kind, node in made if node.alive()]
    if action == "env":
        if len(running) != 1:
            raise osn.kinds.not_one([kind for kind, _ in running], "env")
        kind, node = running[0]
        for name, value in client_environment(node, kind.home).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if action == "stop":
        for kind, node in running:
            node.stop()
            say(f"OpenSearch {kind.name} stopped ({node.url})")
        if not running:
            say("no local OpenSearch node is running")
        return 0
    if not made:
        say("no local OpenSearch node has been made yet (lookalike opensearch start)")
        return 1
    for kind, node in made:
        state = node.health() if node.alive() else None
        shown = f"running ({state.get('status', '?')})" if state else ("starting" if node.alive() else "stopped")
        print(f"{kind.name:8} {shown:17} {node.url:26} {kind.home}")
    return 0 if running else 1


def ml_connect(args: argparse.Namespace, say) -> int:
    """`lookalike opensearch connect`: see lookalike/ml_connect/."""
    settings = Settings.from_env(model=args.model)
    token = settings.ts_token or (read_key_file(settings.ts_key_file) if settings.ts_key_file else None)
    plan = Plan(args.model_server_url or settings.ts_url, settings.model, token, args.name, args.ingest_pipeline,
                args.search_pipeline, args.image_field, args.vector_field)  # fmt: skip
    model_client = ModelClient.from_settings(settings)
    try:
        # the served backbone and dimension (the index's mapping needs them; a dry run asks only for an index)
        info = model_client.info() if (args.create_index or not args.dry_run) else None
        if args.dry_run:
            index = None
            if info is not None:  # the engine a dry run cannot ask the cluster for: Lucene, which every node has
                index = connect.index_body_for(plan, opensearch_index.index_body(info.model, info.dimension,
                                                                                 settings, "lucene"))  # fmt: skip
            print(connect.render(connect.requests(plan, index, args.create_index)))
            return 0
        assert info is not None
        if not settings.opensearch_url:
            raise SettingsError("connect needs the cluster: set LOOKALIKE_OPENSEARCH_URL (and its user and password)")
        client = opensearch_client.connect(settings)
        connector = connect.Connector(client, plan, say)
        outcome = connector.apply()
        if args.create_index:
            engine = opensearch_index.choose_engine(client, settings.engine)
            body = opensearch_index.index_body(info.model, info.dimension, settings, engine,
                                               opensearch_index.derived_source(client))  # fmt: skip
            connect.ensure_index(connector, args.create_index, connect.index_body_for(plan, body), outcome)
        name, photo = next(iter(subject_photos().items()))
        expected = model_client.embed(photo)
        cosine = connector.check(outcome, base64.b64encode(photo).decode("ascii"), expected)
    finally:
        model_client.close()
    for line in outcome.steps:
        print(line)
    print(
        f"checked: {name} through OpenSearch and straight from TorchServe agree (cosine {cosine:.6f}); "
        f"{'changed' if outcome.changed else 'nothing changed'}"
    )
    print(f"model_id {outcome.model_id}")
    return 0
