"""`lookalike`: the one front door. Each subcommand has --help with its defaults and examples."""

from __future__ import annotations

import argparse
import importlib
import sys

from lookalike.cli import index_commands, opensearch_commands, serving_commands
from lookalike.cli.common import subparser

# bench NAME -> the module whose main(argv) runs it
BENCHMARKS = {
    "embed": ("lookalike.bench.embed", "raw in-process embedding vs served by TorchServe, per precision and batch"),
    "levers": ("lookalike.bench.levers", "every speed lever vs the plain fp32 path (in-process or --served)"),
    "index": ("lookalike.bench.index", "embedded index: recall@10, p50/p95, peak RSS, build/open time"),
    "drift": ("lookalike.bench.drift", "embedded reduced graph: a stale projection vs the refit, recall"),
    "spectrum": ("lookalike.bench.spectrum", "the hard set's fitted Lite0 spectrum; --refit embeds the photos again"),
    "opensearch": ("lookalike.bench.opensearch_scale", "OpenSearch: float32 vs Lucene sq, memory/million, sizing"),
    "opensearch-reduced": (
        "lookalike.bench.opensearch_reduced",
        "OpenSearch: a principal-direction walk + rescore vs the full k-NN field",
    ),
    "backends": ("lookalike.bench.backends", "embedded vs OpenSearch: recall, search p50/p95, ingest/s, memory, API"),
    "ingest": ("lookalike.bench.ingest", "ingest throughput vs TorchServe alone, same run"),
    "memory": ("lookalike.bench.memory", "peak RSS of lookalike ingest, 100 vs 10,000 multi-megabyte photos"),
    "instances": ("lookalike.bench.instances", "searches/s through the API with one vs two TorchServe instances"),
    "verify": ("lookalike.bench.verify", "search latency with and without verification, through the API"),
    "dedup": ("lookalike.bench.dedup", "verified de-duplication: time for 10,000 images, per pair, extrapolated to 1M"),
    "regions": ("lookalike.bench.regions", "region vectors vs one per image: embed, ingest, memory, latency"),
    "soak": ("lookalike.bench.soak", "capacity, then 80 %% of it for 10 minutes: failures and resident memory"),
    "capacity": ("lookalike.bench.capacity", "searches/s the whole local stack sustains per TorchServe layout"),
    "pipeline": ("lookalike.bench.pipeline", "ml-commons ingest/search pipelines vs lookalike ingest and POST /search"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike",
        description="Lookalike: self-hosted search by image (TorchServe embeddings + a k-NN index).",
        epilog="Settings come from LOOKALIKE_* environment variables (README, Configuration); flags override them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = subparser(sub, "demo", "the whole stack on real photos: build, serve, ingest, start the API, search",
                  "lookalike demo", "LOOKALIKE_OPENSEARCH_URL=http://127.0.0.1:9200 lookalike demo")  # fmt: skip
    p.set_defaults(run=lambda args: importlib.import_module("lookalike.demo").main())
    serving_commands.add(sub)
    index_commands.add(sub)
    opensearch_commands.add(sub)
    p = subparser(sub, "bench", "benchmarks: print a table, write JSON under reports/",
                  "lookalike bench embed --seconds 10", "lookalike bench levers --served",
                  "lookalike bench index --n 1000000", "lookalike bench NAME --help")  # fmt: skip
    p.add_argument("name", choices=sorted(BENCHMARKS), help="; ".join(f"{k}: {v[1]}" for k, v in BENCHMARKS.items()))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options")
    p.set_defaults(run=lambda args: importlib.import_module(BENCHMARKS[args.name][0]).main(args.args))
    p = subparser(sub, "eval", "relevance of served models side by side: a labelled folder, near duplicates",
                  "lookalike eval --near-duplicates --seeds 0,1,2",
                  "lookalike eval --folder shop-photos/ --models efficientnet_lite0,resnet50",
                  "lookalike eval --help")  # fmt: skip
    p.add_argument("args", nargs=argparse.REMAINDER, help="the evaluation's own options (lookalike eval --help)")
    p = subparser(sub, "finetune", "triplet fine-tuning of a projection head on a folder; exports a .mar",
                  "lookalike finetune shop-photos/ --name shop-v1 --dim 256", "lookalike finetune --help")  # fmt: skip
    p.add_argument("args", nargs=argparse.REMAINDER, help="its own options (lookalike finetune --help)")
    p = subparser(sub, "loadtest", "start what is not running, then a bounded headless Locust run (or --ui)",
                  "lookalike loadtest --shape ramp -u 8 -t 60s", "lookalike loadtest --ui")  # fmt: skip
    p.add_argument("args", nargs=argparse.REMAINDER, help="options for locust (and our loadtest/locustfile.py)")
    return parser


# Commands whose options belong to another parser (ours for eval, Locust's for loadtest): everything
# after the command name goes to it as given (argparse would take a leading --option as its own), so
# `main` hands them over before parsing; build_parser lists them only for `lookalike --help`.
PASS_THROUGH = {
    "eval": "lookalike.relevance.evaluate",
    "finetune": "lookalike.relevance.finetune",
    "loadtest": "lookalike.loadtest.runner",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASS_THROUGH:
        return int(importlib.import_module(PASS_THROUGH[argv[0]]).main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
