"""`lookalike eval`: relevance of served models, side by side, on

  (a) a labelled folder (first-level folder = class): every image queries all the others
      (held out of its own gallery); a right answer is an image of the same class;
  (b) copy protocols (lookalike/copies.py: near-duplicate, heavy-crop, reframe, recolour, pasted into
      another photo): each photo's seeded copy queries the originals; the right answer is its original;
  (c) de-duplication (dedup_eval.py): pair precision and recall of `lookalike dedup`'s groups over
      the photos and their copies, per region scheme and threshold.

Scores are from exact cosine similarity, so they measure the embedding, not the ANN index.
Prints a table per protocol, writes JSON (reports/eval.json).

    lookalike eval --folder shop-photos/ --models efficientnet_lite0,resnet50
    lookalike eval --near-duplicates --seeds 0,1,2            # the bundled photos
    lookalike eval --near-duplicates --kinds all --seeds 0,1,2
    lookalike eval --serve --models efficientnet_lite0,lite0-full --near-duplicates
    lookalike eval --serve --regions none,win2 --kinds partial --seeds 0,1
    lookalike eval --serve --dedup --regions none,win2 --kinds all --seeds 0,1
    lookalike eval --verifier --seeds 0,1                     # thresholds: tune half -> held half
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from lookalike_handler.wire import decode_regions, decode_vector

from lookalike import stack
from lookalike.copies import ALL_KINDS, PARTIAL_KINDS, copies
from lookalike.errors import BadQuery, LookalikeError
from lookalike.ingest.sources import from_folder
from lookalike.photos import SAME_SCENE, halves, interior_photos, subject_photos
from lookalike.relevance import dedup_eval, verifier
from lookalike.relevance.metrics import Scores, ranked_by, rankings, score
from lookalike.serving.client import ModelClient
from lookalike.settings import MODEL_STORE, REPORTS_DIR, RUN_DIR, Settings
from lookalike.verify import Features, extract, verify
from lookalike.verify.rerank import order


def labelled_folder(root: Path) -> tuple[list[bytes], list[str]]:
    """(image bytes, class) of every image under root/<class>/... (ingest's folder rule: the
    first-level folder is the category)."""
    items = [item for item in from_folder(root) if item.category]
    if not items:
        raise BadQuery(f"no images in class folders under {root} (expected {root}/<class>/<image>)")
    return [Path(item.source).read_bytes() for item in items], [str(item.category) for item in items]


def embed_all(client: ModelClient, images: list[bytes], workers: int = 4) -> np.ndarray:
    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(client.embed, images))).astype(np.float32)


def classes(vectors: np.ndarray, labels: list[str]) -> dict[str, Scores]:
    """Leave-one-out class retrieval: overall and per class (classes of one image only answer nothing)."""
    tags = np.array(labels)
    relevant = tags[:, None] == tags[None, :]
    itself = np.eye(len(tags), dtype=bool)
    relevant &= ~itself
    ranked = rankings(vectors, vectors, exclude=itself)
    answerable = relevant.any(axis=1)
    result = {"overall": score(ranked, relevant, answerable)}
    for name in sorted(set(labels)):
        result[name] = score(ranked, relevant, answerable & (tags == name))
    return result


def mean(runs: list[Scores]) -> Scores:
    """The mean of several runs' scores (over seeds)."""
    recall = {k: float(np.mean([r.recall[k] for r in runs])) for k in runs[0].recall}
    return Scores(recall, float(np.mean([r.map_at_10 for r in runs])), runs[0].queries)


def embed_sets(client: ModelClient, images: list[bytes], scheme: str, workers: int = 4) -> list[np.ndarray]:
    """Each image's vectors [1+R, D]: the whole image, then its regions under `scheme`."""

    def one(data: bytes) -> np.ndarray:
        answer = client.embed_response(data, regions=scheme)
        return np.stack([decode_vector(answer)] + [vector for _, vector in decode_regions(answer)])

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, images))


def set_similarity(queries: list[np.ndarray], gallery: list[np.ndarray]) -> np.ndarray:
    """[Q, G]: the best cosine between any vector of query q and any vector of gallery image g."""
    flat = np.concatenate(gallery)
    starts = np.cumsum([0] + [len(vectors) for vectors in gallery[:-1]])
    return np.stack([np.maximum.reduceat((q @ flat.T).max(axis=0), starts) for q in queries])


# How region vectors take part, per evaluation row: the copy queries the originals, or (reversed)
# the original queries the copies, as when the index holds the collage and the query is the photo.
MODES = {
    "whole": lambda copy, orig: set_similarity([c[:1] for c in copy], [o[:1] for o in orig]),
    "indexed regions": lambda copy, orig: set_similarity([c[:1] for c in copy], orig),
    "+query regions": lambda copy, orig: set_similarity(copy, orig),
    "reversed": lambda copy, orig: set_similarity([o[:1] for o in orig], copy),
}


def partial_duplicates(client: ModelClient, images: list[bytes], scheme: str, seeds: list[int],
                       kinds: list[str]) -> dict:  # fmt: skip
    """Per kind of copy and way of using region vectors (MODES), the mean over seeds."""
    originals = embed_sets(client, images, scheme)
    truth = np.eye(len(images), dtype=bool)
    result = {}
    for kind in kinds:
        runs: dict[str, list[Scores]] = {mode: [] for mode in MODES}
        for seed in seeds:
            copied = embed_sets(client, copies(images, kind, np.random.default_rng(seed)), scheme)
            for mode, similarity in MODES.items():
                runs[mode].append(score(ranked_by(similarity(copied, originals)), truth))
        for mode, scores in runs.items():
            if scheme == "none" and mode != "whole":
                continue
            result[f"{kind} [{mode}]"] = mean(scores)
    return result


def near_duplicates(client: ModelClient, images: list[bytes], gallery: np.ndarray, seeds: list[int],
                    kinds: list[str], verify_top: int = 0) -> dict:  # fmt: skip
    """Per kind of copy and seed: each image's copy queries the originals; then the mean over seeds.
    With `verify_top` N, also each query's N nearest re-ranked by the verifier ("[verified]" rows)."""
    result = {}
    originals = [extract(data) for data in images] if verify_top else []
    truth = np.eye(len(images), dtype=bool)
    for kind in kinds:
        runs: dict[str, list[Scores]] = {"": [], " [verified]": []}
        for seed in seeds:
            copied = copies(images, kind, np.random.default_rng(seed))
            queries = embed_all(client, copied)
            ranked = rankings(queries, gallery)
            runs[""].append(score(ranked, truth))
            result[f"{kind} seed {seed}"] = runs[""][-1]
            if verify_top:
                reranked = verified_rankings(copied, ranked, queries @ gallery.T, originals, verify_top)
                runs[" [verified]"].append(score(reranked, truth))
                result[f"{kind} seed {seed} [verified]"] = runs[" [verified]"][-1]
        for suffix, scores in runs.items():
            if len(scores) > 1:
                result[f"{kind} mean{suffix}"] = mean(scores)
    return result


def verified_rankings(queries: list[bytes], ranked: np.ndarray, cosines: np.ndarray, originals: list[Features],
                      n: int) -> np.ndarray:  # fmt: skip
    """`ranked` [Q, G] with each row's first `n` re-ranked as search with verification does."""
    out = ranked.copy()
    for i, data in enumerate(queries):
        query, top = extract(data), ranked[i, :n]
        verdicts = [verify(query, originals[j], cosine=float(cosines[i, j])).verdict for j in top]
        out[i, : len(top)] = top[order(verdicts)]
    return out


@contextmanager
def served(models: list[str], ts_url: str, serve: bool) -> Iterator[str]:
    """The inference URL serving `models`: ts_url as given, or a TorchServe started for the run."""
    if not serve:
        yield ts_url
        return
    for model in models:  # a fresh checkout has no archives yet
        stack.ensure_archive(model, MODEL_STORE)
    with stack.torchserve(models, MODEL_STORE, RUN_DIR / "eval-torchserve") as server:
        yield server.inference_url


def table(title: str, results: dict[str, dict[str, Scores]]) -> str:
    lines = [title, f"{'model':<24} {'set':<34} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'mAP@10':>7} {'queries':>8}"]
    for model, rows in results.items():
        for name, scores in rows.items():
            r = scores.recall
            lines.append(f"{model:<24} {name:<34} {r[1]:>6.3f} {r[5]:>6.3f} {r[10]:>6.3f} {scores.map_at_10:>7.3f} "
                         f"{scores.queries:>8}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return evaluate(argv)
    except LookalikeError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return exc.exit_code


def evaluate(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="lookalike eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--models", default=settings.model, help=f"comma-separated served models ({settings.model})")
    parser.add_argument("--ts-url", default=settings.ts_url, help=f"TorchServe inference URL ({settings.ts_url})")
    parser.add_argument("--serve", action="store_true", help="start a TorchServe with --models from model_store/")
    parser.add_argument("--folder", type=Path, help="labelled folder: <folder>/<class>/<images>")
    parser.add_argument("--near-duplicates", action="store_true", help="run the copy protocols (--kinds)")
    parser.add_argument("--seeds", default="0,1,2", help="copy seeds (0,1,2)")
    parser.add_argument("--kinds", default="near-duplicate",
                        help=f"kinds of copy, comma-separated, 'all' or 'partial' ({', '.join(PARTIAL_KINDS)}): "
                             f"{', '.join(ALL_KINDS)} (near-duplicate)")  # fmt: skip
    parser.add_argument(
        "--regions",
        help="comma-separated region schemes: score the copies with region vectors "
        "(whole, indexed regions, + the query's regions, reversed), mean over seeds",
    )
    parser.add_argument("--dedup", action="store_true",
                        help="de-duplication pair precision/recall over the photos and a copy of each per --kinds, "
                             "per --regions scheme (none unless given) and --thresholds")  # fmt: skip
    parser.add_argument("--thresholds", default="0.8,0.85,0.9,0.95", help="--dedup: cosine thresholds")
    parser.add_argument("--verify", type=int, default=0, metavar="N",
                        help="copies: also re-rank each query's N nearest with the verifier, as search?verify=true "
                             "does ([verified] rows; 20 is the search default)")  # fmt: skip
    parser.add_argument("--photos", type=int, metavar="N",
                        help="only the first N bundled photos (a quick check; default: all of them)")  # fmt: skip
    parser.add_argument("--half", choices=["tune", "held"],
                        help="only one half of the bundled photos (lookalike.photos.halves, by shoot): tune a "
                             "threshold on one, report it on the other (default: all of them)")  # fmt: skip
    parser.add_argument("--verifier", action="store_true",
                        help="the verifier's thresholds: chosen on the tune half, reported on the held half, over "
                             "copies of every kind (--seeds); --half held: the other way round; no server "
                             "(lookalike.relevance.verifier)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "eval.json")
    args = parser.parse_args(argv)
    if args.verifier:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
        return verifier.main(seeds, args.out, swapped=args.half == "held")
    if args.photos is not None and args.photos < 2:
        raise BadQuery("--photos needs at least 2 photos")
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if not args.folder and not args.near_duplicates and not args.regions and not args.dedup:
        args.near_duplicates = True  # nothing chosen: the protocol every install can run
    scenes: list[tuple[int, int]] = []  # photos that show one scene twice: not copies (bundled photos only)
    if args.folder:
        images, labels = labelled_folder(args.folder)
    else:
        photos = {**subject_photos(), **interior_photos()}
        if args.half:
            photos = halves(photos)[0 if args.half == "tune" else 1]
        photos = dict(list(photos.items())[: args.photos])
        images, labels = list(photos.values()), ["photos"] * len(photos)
        names = list(photos)
        scenes = [(names.index(a), names.index(b)) for a, b in SAME_SCENE if a in photos and b in photos]
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    named = {"all": list(ALL_KINDS), "partial": list(PARTIAL_KINDS)}
    kinds = named.get(args.kinds) or [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(ALL_KINDS))
    if unknown:
        raise BadQuery(f"unknown kinds of copy: {', '.join(unknown)} (choose from {', '.join(ALL_KINDS)})")
    by_class: dict[str, dict[str, Scores]] = {}
    by_copy: dict[str, dict[str, Scores]] = {}
    deduplicated: dict[str, dict] = {}
    with served(models, args.ts_url, args.serve) as ts_url:
        for model in models:
            client = ModelClient(ts_url, model)
            try:
                gallery = embed_all(client, images)
                if args.folder:
                    by_class[model] = classes(gallery, labels)
                if args.dedup:
                    schemes = (args.regions or "none").split(",")
                    thresholds = [float(t) for t in args.thresholds.split(",")]
                    deduplicated[model] = dedup_eval.evaluate(client, images, kinds, schemes, seeds, thresholds,
                                                              verified=args.verify > 0, scenes=scenes)  # fmt: skip
                elif args.regions:  # with --dedup, --regions names the schemes its index is built with
                    for scheme in args.regions.split(","):
                        by_copy[f"{model} {scheme}"] = partial_duplicates(client, images, scheme, seeds, kinds)
                if args.near_duplicates:  # beside --dedup or --regions too: each protocol asked for runs
                    by_copy[model] = near_duplicates(client, images, gallery, seeds, kinds, args.verify)
            finally:
                client.close()
    source = str(args.folder) if args.folder else f"bundled photos{f', {args.half} half' if args.half else ''}"
    report: dict = {"images": len(images), "source": source, "models": models}
    if by_class:
        print(table(f"Class retrieval on {args.folder} ({len(images)} images, {len(set(labels))} classes; "
                    "each image queries all the others)", by_class))  # fmt: skip
        report["classes"] = {m: {k: s.row() for k, s in rows.items()} for m, rows in by_class.items()}
    if by_copy:
        print(table(f"\nCopies ({len(images)} originals; each image's seeded copy queries the originals)", by_copy))
        report["near_duplicates"] = {m: {k: s.row() for k, s in rows.items()} for m, rows in by_copy.items()}
    for model, results in deduplicated.items():
        print(
            f"\nDe-duplication, {model} ({len(images)} photos + one copy of each per kind: {', '.join(kinds)}; "
            f"mean of seeds {args.seeds}; lookalike dedup's groups, pairs within a group; per kind: "
            "precision/recall of the pairs it is in; scene: same-scene pairs grouped, of all):"
        )
        print(dedup_eval.table(results, kinds))
    if deduplicated:
        report["dedup"] = deduplicated
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.out}")
    return 0
