"""Index administration (OpenSearch): show the live index, build a new one, swap the alias.

Re-index for a new model without downtime (TorchServe serving the new model):
    python -m opensearch.admin create                  # prints the new physical index name
    python -m opensearch.ingest photos/ --index NAME   # fill it while the alias still serves the old one
    python -m opensearch.admin swap NAME               # one atomic alias switch

The embedded index keeps one folder per model and dimension, so it needs no swap.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import cli
from .backend import open_index
from .embedding import probe
from .opensearch_index import connect, create_index, swap_alias


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opensearch.admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["info", "create", "swap"])
    parser.add_argument("name", nargs="?", help="swap: the physical index to point the alias at")
    cli.add_common_args(parser)
    args = parser.parse_args(argv)
    settings = cli.settings_from_args(args)
    try:
        info = probe(cli.make_client(settings))
        if args.action == "info":
            print(json.dumps(open_index(settings, info.model, info.dimension).describe(), indent=2))
            return 0
        if not settings.opensearch_url:
            print("error: create/swap are for OpenSearch; the embedded index keeps one folder per model")
            return 2
        client = connect(settings)
        if args.action == "create":
            print(create_index(client, settings, info.model, info.dimension))
            return 0
        if not args.name:
            parser.error("swap needs the physical index name")
        old = swap_alias(client, settings.alias, args.name, info.model, info.dimension)
        print(f"alias {settings.alias}: {old} -> {args.name}")
        return 0
    except Exception as exc:
        return cli.fail(exc)


if __name__ == "__main__":
    sys.exit(main())
