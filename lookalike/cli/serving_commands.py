"""Subcommands that build and run things: mar, serve, stop, status, api."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lookalike import stack
from lookalike.api import process
from lookalike.api.serve import run as serve_api
from lookalike.cli.common import add_settings_args, guarded, settings_from_args, subparser
from lookalike.containers import images
from lookalike.serving.torchserve import PORT_KEYS, ServerError, TorchServe
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, RUN_DIR, TORCHSERVE_PORTS


class BackboneNames:
    """The backbone ids as argparse choices, read from the registry only when a --model is checked or
    its help shown: the registry imports torch, which every other command (search, stop ...) is spared."""

    def __contains__(self, name: object) -> bool:
        from lookalike_handler.backbones import BACKBONES

        return name in BACKBONES

    def __iter__(self) -> Iterator[str]:
        from lookalike_handler.backbones import BACKBONES

        return iter(sorted(BACKBONES))


def add(sub: argparse._SubParsersAction) -> None:
    p = subparser(sub, "mar", "build model_store/NAME.mar for one backbone (torch-model-archiver)",
                  "lookalike mar", "lookalike mar --model resnet50 --weights ~/resnet50-11ad3fa6.pth",
                  "lookalike mar --model resnet50 --random-weights   # plumbing and speed only")  # fmt: skip
    p.add_argument("--model", choices=BackboneNames(), metavar="MODEL", default=DEFAULT_MODEL,
                   help=f"backbone: %(choices)s ({DEFAULT_MODEL})")  # fmt: skip
    p.add_argument("--name", help="archive/model name (default: the backbone id)")
    p.add_argument("--store", type=Path, default=MODEL_STORE, help="where to write the .mar (model_store/)")
    p.add_argument("--weights", help="explicit weights file (resnet50; LOOKALIKE_RESNET50_WEIGHTS)")
    p.add_argument("--random-weights", action="store_true", help="seeded random weights: plumbing/speed only")
    p.add_argument("--no-int8", action="store_true",
                   help="precision auto: do not try an int8 trunk (by default tried for resnet50 with real weights: "
                        "quantized, held to fp32, raced against the default; packed only if it wins)")  # fmt: skip
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "int8", "auto"],
                   help="override handler.precision; int8 (CPU): quantized and checked against fp32 now, "
                        "refused with the figures if it misses the bound")  # fmt: skip
    p.add_argument("--fit", choices=["crop", "full"],
                   help="override handler.fit: crop (centre crop, the default) or full (the whole image); "
                        "a full-fit archive serves the model id <backbone>+full")  # fmt: skip
    p.add_argument("--batch-size", type=int, help="override batchSize")
    p.add_argument("--max-batch-delay", type=int, help="override maxBatchDelay (ms)")
    p.add_argument("--workers", type=int, help="override minWorkers and maxWorkers")
    p.add_argument("--archive-version", default="1.0",
                   help="the archive's version (1.0); every answer names it as <name>/<version>, so a rolling "
                        "update shows which archive served each request")  # fmt: skip
    p.add_argument("--if-stale", action="store_true", help="build only if missing or older than the handler code")
    p.set_defaults(run=build_archive)

    p = subparser(sub, "serve", "start TorchServe with the given models (built if stale); returns once they answer",
                  "lookalike serve", "lookalike serve --models efficientnet_lite0,resnet50 --token-auth")  # fmt: skip
    p.add_argument("--models", default=DEFAULT_MODEL, help=f"comma-separated model names ({DEFAULT_MODEL})")
    p.add_argument("--store", type=Path, default=MODEL_STORE, help="model store holding the .mar files")
    p.add_argument("--run-dir", type=Path, default=RUN_DIR / "torchserve", help="per-instance config, tmp and logs")
    for key in PORT_KEYS:
        flag = f"--{key.replace('_', '-')}-port"
        p.add_argument(flag, type=int, default=TORCHSERVE_PORTS[key], dest=key, help=f"({TORCHSERVE_PORTS[key]})")
    p.add_argument("--token-auth", action="store_true", help="require bearer keys (RUN_DIR/key_file.json)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the models (300)")
    p.set_defaults(run=serve)

    p = subparser(sub, "image", "build the model-server and API container images (podman) and print their sizes",
                  "lookalike image", "lookalike image --only api",
                  "lookalike image --base docker.io/library/python:3.11-slim-bookworm")  # fmt: skip
    p.add_argument("--only", help="comma-separated: model-server, api (both)")
    p.add_argument("--base", default="auto", help="base image; auto: the slim Python image if a registry has it, "
                   "else Debian 12 made here with debootstrap (auto)")  # fmt: skip
    p.add_argument("--models", default=DEFAULT_MODEL, help=f"archives in the model-server image ({DEFAULT_MODEL})")
    p.add_argument("--rebuild-base", action="store_true", help="make the local Debian base again")
    p.set_defaults(run=guarded(build_images))

    p = subparser(sub, "balance", "spread requests over API replicas; one not ready or draining gets nothing new",
                  "lookalike balance --port 8000 --to http://127.0.0.1:8001,http://127.0.0.1:8002")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--to", required=True, help="comma-separated API replica URLs")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between readiness reads of each replica (1)")
    p.set_defaults(run=balance)

    p = subparser(sub, "stop", "stop the TorchServe and API that serve/api/demo started", "lookalike stop")
    p.set_defaults(run=stop)
    p = subparser(sub, "status", "say whether TorchServe and the API are running (exit 1 if not)", "lookalike status")
    p.set_defaults(run=status)

    p = subparser(sub, "api", "run the search API in the foreground (OpenAPI docs at /docs)",
                  "lookalike api", "lookalike api --port 9000 --opensearch-url http://127.0.0.1:9200")  # fmt: skip
    p.add_argument("--host", help="bind address (LOOKALIKE_API_HOST; 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (LOOKALIKE_API_PORT; 8000)")
    add_settings_args(p)
    p.set_defaults(run=guarded(api))


def build_archive(args: argparse.Namespace) -> int:
    from lookalike.serving import archive, weights  # torch and the handler: only for the commands that build
    from lookalike.serving.int8 import BoundMissed

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides: dict[str, Any] = {}
    if args.batch_size:
        overrides["batchSize"] = args.batch_size
    if args.max_batch_delay is not None:
        overrides["maxBatchDelay"] = args.max_batch_delay
    if args.workers:
        overrides.update(minWorkers=args.workers, maxWorkers=args.workers)
    handler_overrides = {key: value for key, value in (("precision", args.precision), ("fit", args.fit)) if value}
    target = args.store / f"{args.name or args.model}.mar"
    if args.if_stale and not archive.is_stale(target):
        print(f"{target} is up to date")
        return 0
    try:
        mar = archive.build(args.model, args.store, args.name, args.weights, args.random_weights, overrides,
                            handler_overrides, version=args.archive_version,
                            try_int8=False if args.no_int8 else None)  # fmt: skip
    except (weights.WeightsNotFound, BoundMissed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(mar)
    return 0


def serve(args: argparse.Namespace) -> int:
    from lookalike_handler.backbones import BACKBONES

    from lookalike.serving import weights
    from lookalike.serving.int8 import BoundMissed

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [name for name in args.models.split(",") if name]
    try:
        for name in names:
            if name in BACKBONES:
                stack.ensure_archive(name, args.store)
        missing = [name for name in names if not (args.store / f"{name}.mar").exists()]
        if missing:
            print(
                f"error: {', '.join(missing)}.mar not in {args.store}; build it with `lookalike mar`", file=sys.stderr
            )
            return 2
        ports = {key: getattr(args, key) for key in PORT_KEYS}
        server = stack.start_torchserve(
            names, args.store, args.run_dir, ports, args.timeout, token_auth=args.token_auth
        )
    except (weights.WeightsNotFound, BoundMissed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"TorchServe ready: inference {server.inference_url}, metrics {server.metrics_url}/metrics")
    for name in names:
        print(f"  POST {server.inference_url}/predictions/{name}")
    if args.token_auth:
        print(f"  bearer keys in {server.key_file}")
    return 0


def build_images(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    only = [name for name in (args.only or "").split(",") if name] or None
    models = [name for name in args.models.split(",") if name]
    return images.main(only, args.base, models, args.rebuild_base)


def stop(args: argparse.Namespace) -> int:
    stopped = stack.stop_all()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def status(args: argparse.Namespace) -> int:
    ts_pid = TorchServe({}, MODEL_STORE, RUN_DIR / "torchserve").pid()
    api_pid = process.api_pid()
    print(f"TorchServe: {f'running, pid {ts_pid}' if ts_pid else 'not running'}")
    print(f"search API: {f'running, pid {api_pid}' if api_pid else 'not running'}")
    return 0 if ts_pid and api_pid else 1


def balance(args: argparse.Namespace) -> int:
    from lookalike import balancer

    return balancer.main(["--host", args.host, "--port", str(args.port), "--to", args.to,
                          "--interval", str(args.interval)])  # fmt: skip


def api(args: argparse.Namespace) -> int:
    return serve_api(settings_from_args(args, api_host=args.host, api_port=args.port))
