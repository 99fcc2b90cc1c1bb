"""Subcommands on the index: ingest, search, similar, dedup, admin."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from lookalike import dedup, rollout, search
from lookalike.cli.common import add_settings_args, connected, guarded, settings_from_args, subparser
from lookalike.errors import BadQuery
from lookalike.index import live, open_index, recall
from lookalike.index.opensearch_client import connect as opensearch_client
from lookalike.index.opensearch_index import OpenSearchIndex, create_index, swap_alias
from lookalike.index.tuning import REREAD
from lookalike.ingest import sources
from lookalike.ingest.pipeline import DEFAULT_ERRORS, Ingestor, write_errors
from lookalike.serving.client import ModelClient
from lookalike.settings import RUN_DIR, Settings
from lookalike.stack import connect as connect_pair
from lookalike.timing import Stages
from lookalike.verify.features import extract
from lookalike.verify.store import FeatureStore


def add(sub: argparse._SubParsersAction) -> None:
    p = subparser(sub, "ingest", "embed a folder or manifest of images into the index (idempotent, resumable)",
                  "lookalike ingest photos/", "lookalike ingest --manifest images.csv --concurrency 8",
                  "lookalike ingest photos/ --index NAME   # a new index, before `admin swap NAME`")  # fmt: skip
    p.add_argument("folder", nargs="?", type=Path, help="folder of images (recursive; first-level folder = category)")
    p.add_argument("--manifest", type=Path, help="CSV or JSONL manifest (path or url, id, category, tags)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight to TorchServe (default 8)")
    p.add_argument("--errors", type=Path, default=DEFAULT_ERRORS, help=f"error report CSV (default {DEFAULT_ERRORS})")
    p.add_argument("--batch", type=int, default=64, help="documents per index write (default 64)")
    p.add_argument("--no-features", action="store_true",
                   help="do not make each image's local features now (verified search and dedup then make them "
                        "from the source on first need)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true",
                   help="no progress (on a terminal a bar; elsewhere a plain line every 10 s)")  # fmt: skip
    add_settings_args(p)
    p.set_defaults(run=guarded(ingest))

    for name, summary, examples in (
        ("search", "find indexed images that look like an image file or URL",
         ("lookalike search photo.jpg -k 5", "lookalike search --url https://example.com/a.jpg --json",
          "lookalike search photo.jpg --per-category 3")),
        ("similar", "find indexed images that look like an indexed one (itself excluded)",
         ("lookalike similar 3f5a...e1 -k 5", "lookalike similar 3f5a...e1 --category kitchens --json")),
    ):  # fmt: skip
        p = subparser(sub, name, summary, *examples)
        if name == "search":
            p.add_argument("image", nargs="?", help="image file to search with")
            p.add_argument("--url", help="image URL to search with")
        else:
            p.add_argument("id", help="the indexed image's id")
        p.add_argument("-k", type=int, help="number of hits (default LOOKALIKE_DEFAULT_K, 10)")
        p.add_argument("--category", help="only this category")
        p.add_argument("--tag", action="append", default=[], help="only images with this tag (repeatable: all)")
        p.add_argument("--min-similarity", type=float, help="drop hits below this cosine")
        p.add_argument("--per-category", type=int, metavar="N", help="the best N in each category instead")
        p.add_argument("--no-verify", action="store_true",
                       help="cosine order, no verdicts (by default the nearest LOOKALIKE_VERIFY_CANDIDATES, 20, are "
                            "judged with local features: verified copies, then parts, first, each with its verdict: "
                            "docs/relevance.md)")  # fmt: skip
        p.add_argument("--json", action="store_true", help="JSON instead of a table")
        add_settings_args(p)
        p.set_defaults(run=guarded(find))

    p = subparser(sub, "dedup", "duplicate groups over the whole index, verified with local features, as JSON or CSV",
                  "lookalike dedup --out run/duplicates.json   # and run/duplicates.stacks.json: same-scene stacks",
                  "lookalike dedup --no-verify --threshold 0.85 --out run/duplicates.csv")  # fmt: skip
    p.add_argument("--threshold", type=float,
                   help=f"cosine at or above which a pair is judged ({dedup.CANDIDATE_THRESHOLD}), or with --no-verify "
                        f"is a duplicate ({dedup.DEFAULT_THRESHOLD})")  # fmt: skip
    p.add_argument("--keep", choices=sorted(dedup.KEEPERS),
                   help="which image of a group is kept: best, the largest picture, or the copy inside it when it is "
                        "that picture with a band, frame or UI added and the copy shows it as well; or earliest, "
                        "the earliest ingested (then the largest); default best when verified, earliest with "
                        "--no-verify")  # fmt: skip
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="cosine alone decides (no local features; faster, far less precise: docs/relevance.md)",
    )
    p.add_argument("--by-regions", action="store_true",
                   help="with --no-verify: match by region vectors too (an index with LOOKALIKE_REGIONS): finds more "
                        "crops and collages, with many more false pairs (docs/relevance.md); verified dedup always "
                        "finds its candidates by region vectors where the index has them")  # fmt: skip
    p.add_argument("--no-words", action="store_true",
                   help="verified dedup: judge cosine neighbours only, not also the images that share the most visual "
                        "words (faster; finds fewer photos pasted into collages: docs/relevance.md)")  # fmt: skip
    p.add_argument("--neighbours", type=int, default=10, help="neighbours checked per image (default 10)")
    p.add_argument("--workers", type=int, help="threads judging pairs (default: every core)")
    p.add_argument("--out", type=Path, default=RUN_DIR / "duplicates.json", help=".json or .csv")
    add_settings_args(p)
    p.set_defaults(run=guarded(find_duplicates))

    p = subparser(sub, "admin", "show the live index; OpenSearch: create a new physical index, swap the alias, "
                  "merge its segments after a bulk load",
                  "lookalike admin info", "lookalike admin create        # prints the new index name",
                  "lookalike ingest photos/ --index NAME",
                  "lookalike admin merge --index NAME   # one segment: one HNSW graph per shard to search",
                  "lookalike admin swap NAME     # one atomic switch",
                  "lookalike admin recall --target 0.95   # measure recall@10 per efSearch on its own data, keep the "
                  "smallest that reaches 0.95",
                  "lookalike admin rollout --model resnet50   # blue/green: a new index by the new model beside the "
                  "live one, checked, then both switched together (rollback: the same with the old model)")  # fmt: skip
    p.add_argument("action", choices=["info", "create", "merge", "swap", "recall", "rollout"])
    p.add_argument("name", nargs="?", help="swap: the physical index to point the alias at")
    p.add_argument("--target", type=float, help="recall: the recall@k to reach; the smallest efSearch that reaches "
                   "it is recorded in the index and used by every later search")  # fmt: skip
    p.add_argument("--ef-search", default=",".join(map(str, recall.EF_VALUES)),
                   help="recall: comma-separated efSearch values to measure (%(default)s)")  # fmt: skip
    p.add_argument("--k", type=int, default=10, help="recall: k of recall@k (10)")
    p.add_argument("--sample", type=int, default=recall.SAMPLE, help=f"recall: queries ({recall.SAMPLE})")
    p.add_argument("--concurrency", type=int, default=4, help="rollout: images embedded at once (4)")
    p.add_argument("--no-progress", action="store_true", help="rollout: no progress line")
    add_settings_args(p)
    p.set_defaults(run=guarded(admin))


def ingest(args: argparse.Namespace) -> int:
    if bool(args.folder) == bool(args.manifest):
        raise BadQuery("give a folder or --manifest FILE (one of them)")

    def items() -> Iterator[sources.Item]:  # streamed twice: counted (names only), then ingested
        return sources.from_manifest(args.manifest) if args.manifest else sources.from_folder(args.folder)

    total = sum(1 for _ in items())  # a missing folder or a bad manifest row stops here, before connecting
    stack = connected(args)
    try:
        ingestor = Ingestor(stack.settings, stack.index, stack.info, concurrency=args.concurrency, chunk=args.batch,
                            features=not args.no_features)  # fmt: skip
        report = ingestor.run(items(), total, progress=not args.no_progress)
        write_errors(args.errors, report.errors)
        print(report.summary())
        if report.failed:
            print(f"{report.failed} failed; reasons in {args.errors}")
            for source, _, reason in report.errors[:5]:
                print(f"  {source}: {reason}")
        print(f"index: {stack.index.describe()}")
    finally:
        stack.close()
    building = live.read(stack.settings).next
    if building is not None:  # a blue/green rollout builds: these writes reach its index too
        print(f"a rollout to {building.endpoint} is building: the same images into its index")
        nxt = connect_pair(stack.settings, building)
        try:
            later = Ingestor(nxt.settings, nxt.index, nxt.info, concurrency=args.concurrency, chunk=args.batch,
                             features=False).run(items(), total, progress=not args.no_progress)  # fmt: skip
            print(later.summary())
        finally:
            nxt.close()
    return 1 if report.failed else 0


def find(args: argparse.Namespace) -> int:
    doc_id = getattr(args, "id", None)
    if doc_id is None and (args.image is None) == (args.url is None):
        raise BadQuery("give an IMAGE file or --url (one of them)")
    stack = connected(args)
    stages = Stages()
    try:
        if doc_id:
            vector = search.stored_vector(stack.index, doc_id)
        else:
            limit = stack.settings.max_image_bytes
            data = Path(args.image).read_bytes() if args.image else sources.fetch_url(args.url, limit)
            with stages.timed("embed"):
                vector = stack.client.embed(data)
        exclude = [doc_id] if doc_id else []
        if args.per_category:
            with stages.timed("knn"):
                groups = search.per_category(stack.index, vector, args.per_category, exclude,
                                             max_categories=stack.settings.max_categories)  # fmt: skip
            result: object = {category: [hit.to_dict() for hit in hits] for category, hits in groups.items()}
            text = "\n\n".join(f"[{category}]\n{search.format_table(hits)}" for category, hits in groups.items())
        else:
            k = args.k or stack.settings.default_k
            chosen = {"category": args.category, "tags": args.tag, "min_similarity": args.min_similarity,
                      "exclude_ids": exclude, "max_k": stack.settings.max_k}  # fmt: skip
            if not args.no_verify:
                settings = stack.settings
                store = FeatureStore.of(settings)
                candidates = settings.verify_candidates
                try:
                    if doc_id:
                        del chosen["exclude_ids"]  # verified_like leaves the document out itself
                        hits = search.verified_like(stack.index, store, doc_id, k, candidates=candidates, stages=stages,
                                                    **chosen)  # fmt: skip
                    else:
                        with stages.timed("extract"):
                            query = extract(data)
                        hits = search.verified(stack.index, store, query, vector, k, candidates=candidates,
                                               stages=stages, **chosen)  # fmt: skip
                finally:
                    store.close()
            else:
                with stages.timed("knn"):
                    hits = search.by_vector(stack.index, vector, k, **chosen)
            result, text = [hit.to_dict() for hit in hits], search.format_table(hits)
    finally:
        stack.close()
    print(json.dumps(result, indent=2) if args.json else text)
    if args.verbose:
        print(f"stages: {stages.summary()}", file=sys.stderr)
    return 0


def find_duplicates(args: argparse.Namespace) -> int:
    stack = connected(args)
    try:
        found = dedup.run(stack.index, stack.settings, verify=not args.no_verify, threshold=args.threshold,
                          neighbours=args.neighbours, keep=args.keep, workers=args.workers,
                          by_words=not args.no_words, by_regions=args.by_regions)  # fmt: skip
    finally:
        stack.close()
    for line in dedup.save(found, args.out):
        print(line)
    print("review them at /duplicates on the API (lookalike api)")
    return 0


def measure_recall(index, args: argparse.Namespace) -> int:
    """`lookalike admin recall`: the table, and with --target the efSearch recorded in the index."""
    try:
        ef_values = tuple(sorted({int(value) for value in args.ef_search.split(",") if value.strip()}))
    except ValueError:
        ef_values = ()
    problem = None if ef_values and min(ef_values) > 0 else f"--ef-search is positive integers, not {args.ef_search!r}"
    if args.target is not None and not 0 < args.target <= 1:
        problem = f"--target is a recall between 0 and 1, not {args.target}"
    if problem:
        index.close()
        raise BadQuery(problem)
    try:
        try:
            found = recall.estimate(index, args.k, args.sample, ef_values=ef_values, progress=True)
        except ValueError as exc:
            raise BadQuery(str(exc)) from exc
        print(f"recall@{found.k} of {index.describe()['index']} on {len(found.queries)} of its own documents "
              f"(perturbed, each left out; exact top-{found.k}: {found.truth_seconds:.1f} s):")  # fmt: skip
        print(f"{'efSearch':>8} {'recall':>7} {'p50 ms':>7}")
        for row in found.rows:
            print(f"{row['ef_search']:>8} {row['recall']:>7.4f} {row['p50_ms']:>7.2f}")
        if args.target is None:
            return 0
        chosen = found.smallest(args.target)
        if chosen is None:
            best, largest = found.best(), found.rows[-1]["ef_search"]
            rebuild = ("a larger LOOKALIKE_M / LOOKALIKE_EF_CONSTRUCTION" if not hasattr(index, "graph_kind") else
                       "a larger LOOKALIKE_M / LOOKALIKE_EF_CONSTRUCTION, or LOOKALIKE_PROJECTION=128 if it is 0 (the "
                       "reduced graph, measured on hard catalogues: docs/operations.md)")  # fmt: skip
            print(f"error: recall@{found.k} {args.target} is not reached at any efSearch up to {largest}: "
                  f"the best is {best['recall']} at efSearch {best['ef_search']} (p50 {best['p50_ms']} ms); nothing "
                  f"recorded. Try larger values (--ef-search), rebuild with {rebuild}, or aim lower",
                  file=sys.stderr)  # fmt: skip
            return 1
        index.tuning.record(found.summary(chosen, args.target))
        print(f"recorded efSearch {chosen['ef_search']} (recall@{found.k} {chosen['recall']}, p50 {chosen['p50_ms']} "
              f"ms): every search of this index uses it from now on (a running API within {REREAD:.0f} s)")  # fmt: skip
        return 0
    finally:
        index.close()


def admin(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.action == "rollout":  # --model names the new endpoint; the live one comes from the catalogue's record
        if not args.model:
            raise BadQuery("name the model to roll out: lookalike admin rollout --model NEW")
        outcome = rollout.run(settings.replace(model=Settings.from_env().model), args.model,
                              concurrency=args.concurrency, progress=not args.no_progress)  # fmt: skip
        return 0 if outcome.switched or not outcome.problems else 1
    client = ModelClient.from_settings(settings)
    try:
        info = client.info()
    finally:
        client.close()
    if args.action == "info":
        index = open_index(settings, info.model, info.dimension)
        print(json.dumps(index.describe(), indent=2))
        index.close()
        return 0
    if args.action == "recall":
        return measure_recall(open_index(settings, info.model, info.dimension), args)
    if not settings.opensearch_url:
        raise BadQuery("create/swap are for OpenSearch; the embedded index keeps one folder per model")
    os_client = opensearch_client(settings)
    if args.action == "create":
        print(create_index(os_client, settings, info.model, info.dimension))
        return 0
    if args.action == "merge":
        index = OpenSearchIndex(settings, info.model, info.dimension)
        print(f"merging {index.name} into one segment per shard (minutes per 100k vectors) ...", file=sys.stderr)
        print(json.dumps(index.merge(), indent=2))
        return 0
    if not args.name:
        raise BadQuery("swap needs the physical index name (lookalike admin swap NAME)")
    old = swap_alias(os_client, settings.alias, args.name, info.model, info.dimension)
    print(f"alias {settings.alias}: {old} -> {args.name}")
    return 0
