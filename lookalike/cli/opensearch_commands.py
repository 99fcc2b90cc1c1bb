"""`lookalike opensearch start|stop|status|install`: the local OpenSearch node (make opensearch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lookalike import opensearch_node as osn
from lookalike.cli.common import guarded, subparser


def add(sub: argparse._SubParsersAction) -> None:
    p = subparser(sub, "opensearch", "a local OpenSearch 2.19 + k-NN node from Maven Central (data in run/opensearch)",
                  "lookalike opensearch start            # install on first use, start, wait for yellow/green",
                  "OPENSEARCH_PORT=9201 lookalike opensearch start",
                  "lookalike opensearch stop", "lookalike opensearch status",
                  "LOOKALIKE_OPENSEARCH_URL=http://127.0.0.1:9200 lookalike demo")  # fmt: skip
    p.add_argument("action", choices=["start", "stop", "status", "install"])
    p.add_argument("--port", type=int, help=f"HTTP port (OPENSEARCH_PORT; {osn.DEFAULT_PORT})")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for yellow/green (180)")
    p.add_argument("--dir", type=Path, default=osn.NODE_DIR,
                   help="the node's config, data and logs (run/opensearch; as root it must be reachable by the "
                        f"node's user {osn.USER})")  # fmt: skip
    p.set_defaults(run=guarded(run))


def run(args: argparse.Namespace) -> int:
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731 - progress to stderr, the URL to stdout
    if args.action == "install":
        print(osn.prepare(say)[0].home)
        return 0
    node = osn.local_node(args.dir, http_port=args.port, installed=args.action == "start", say=say)
    if args.action == "start":
        if node.alive():
            node.wait_ready(args.timeout)
            say(f"OpenSearch already running (pid {node.pid()})")
        else:
            say(f"starting OpenSearch on {node.url} (Java {node.java_home}; data and logs in {node.config.home}) ...")
            node.start(timeout=args.timeout)
        print(node.url)
        return 0
    if args.action == "stop":
        if not node.alive():
            say("OpenSearch is not running")
            return 0
        node.stop()
        say("OpenSearch stopped")
        return 0
    state = osn.health(node.url) if node.alive() else None
    if state is None:
        say(f"OpenSearch is not running at {node.url}")
        return 1
    print(json.dumps({"url": node.url, "pid": node.pid(), **state}, indent=2))
    return 0 if state.get("status") in ("yellow", "green") else 1
