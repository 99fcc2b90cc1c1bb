"""`lookalike finetune DIR`: adapt the embedding to a catalogue with a triplet loss, on the CPU.

The backbone stays frozen; a projection head (one linear layer to --dim, then L2 normalisation)
is trained so that images of the same kind land closer than images of different kinds:

- DIR/<class>/<images>: anchor and positive are views of two images of one class; a folder of
  images without classes: two augmented copies of one image (each image is its own kind).
- Each image is seen as itself and --views augmented copies (the near-duplicate protocol's
  augmentations); the frozen backbone embeds every view once, so the head trains on cached
  features (seconds per epoch, not minutes).
- Triplets are mined in the batch: for each anchor-positive pair the semi-hard negative (farther
  than the positive, within the margin), else the hardest one; loss = mean(max(0, d(a,p) -
  d(a,n) + margin)) on squared distances of unit vectors.
- Images are split into train and validation (per class); training stops early when the
  validation mAP@10 has not improved for --patience epochs, keeping the best head.

At the end it prints mAP@10 and recall@1 on the held-out images before (the backbone alone) and
after (with the head), and writes a .mar that TorchServe serves like any other: its own model id
(--name), version and dimension. Re-index into a new index and swap the alias (docs/relevance.md).

    lookalike finetune shop-photos/ --name shop-v1 --dim 256 --margin 0.2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lookalike_handler.decode import decode_image
from lookalike_handler.embedder import Embedder
from lookalike_handler.head import ProjectionHead
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.transforms import normalize_batch
from tqdm import tqdm

from lookalike.copies import near_duplicate
from lookalike.errors import BadQuery, LookalikeError
from lookalike.ingest.sources import from_folder
from lookalike.relevance.evaluate import classes
from lookalike.relevance.metrics import rankings, score
from lookalike.serving import archive
from lookalike.serving.weights import resolve
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR


@dataclass
class Dataset:
    images: list[bytes]
    labels: np.ndarray  # int class per image
    by_class: bool  # False: every image is its own class (positives are augmented copies)


def load(root: Path) -> Dataset:
    """DIR/<class>/<images> (classes), or images directly in DIR (each its own class)."""
    items = list(from_folder(root))  # ingest's folder rule: the first-level folder is the category
    if not items:
        raise BadQuery(f"no images under {root}")
    nested = [item for item in items if item.category]
    if nested:
        names = sorted({str(item.category) for item in nested})
        labels = np.array([names.index(str(item.category)) for item in nested])
        return Dataset([Path(item.source).read_bytes() for item in nested], labels, True)
    return Dataset([Path(item.source).read_bytes() for item in items], np.arange(len(items)), False)


def split(data: Dataset, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Image indices (train, validation): per class when there are classes, keeping >= 2 of a class
    on each side where it has >= 4 images."""
    if not data.by_class:
        order = rng.permutation(len(data.images))
        cut = max(2, round(len(order) * fraction))
        return np.sort(order[cut:]), np.sort(order[:cut])
    train, val = [], []
    for label in np.unique(data.labels):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        cut = max(2, round(len(members) * fraction)) if len(members) >= 4 else 0
        val += members[:cut].tolist()
        train += members[cut:].tolist()
    if not val:
        raise BadQuery("too few images to hold any out: give a class at least 4 images")
    return np.array(sorted(train)), np.array(sorted(val))


@torch.inference_mode()
def features(embedder: Embedder, images: list[bytes], batch: int = 16) -> torch.Tensor:
    """The frozen backbone's raw features `[N, D]` (the head's input), as the served model computes them."""
    out = []
    for start in range(0, len(images), batch):
        pixels = torch.stack([embedder.pixels(decode_image(data)) for data in images[start : start + batch]])
        out.append(embedder.model(normalize_batch(pixels, embedder.backbone.spec)).float())
    return torch.cat(out)


def views(images: list[bytes], count: int, seed: int) -> list[list[bytes]]:
    """For each image: itself, then `count` seeded augmented copies."""
    rng = np.random.default_rng(seed)
    return [[data, *(near_duplicate(data, rng) for _ in range(count))] for data in images]


def triplet_loss(out: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Semi-hard (else hardest) negative per anchor-positive pair, within the batch."""
    distance = torch.cdist(out, out).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    losses = []
    for anchor in range(len(labels)):
        positives = torch.nonzero(same[anchor] & ~eye[anchor]).flatten()
        negatives = distance[anchor][~same[anchor]]
        if len(positives) == 0 or len(negatives) == 0:
            continue
        d_ap = distance[anchor, positives][:, None]
        semi = (negatives[None, :] > d_ap) & (negatives[None, :] < d_ap + margin)
        hardest = negatives.min().expand(len(positives), 1)
        chosen = torch.where(semi.any(dim=1, keepdim=True),
                             torch.where(semi, negatives[None, :], torch.inf).min(dim=1, keepdim=True).values,
                             hardest)  # fmt: skip
        losses.append(F.relu(d_ap - chosen + margin).flatten())
    return torch.cat(losses).mean() if losses else out.sum() * 0


def held_out_scores(vectors: torch.Tensor, data: Dataset, val: np.ndarray) -> dict:
    """mAP@10 and recall@1 on the validation images: by class (each queries the others), or each
    image's augmented copy querying the originals."""
    unit = F.normalize(vectors, dim=-1).numpy()
    if data.by_class:
        result = classes(unit[:, 0], [str(label) for label in data.labels[val]])["overall"]
    else:
        result = score(rankings(unit[:, 1], unit[:, 0]), np.eye(len(val), dtype=bool))
    return {"mAP@10": round(result.map_at_10, 4), "recall@1": round(result.recall[1], 4)}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = load(args.folder)
    train_idx, val_idx = split(data, args.val, rng)
    settings = HandlerSettings(backbone=args.model, precision="fp32", fit=args.fit)
    embedder = Embedder.load(settings, str(resolve(args.model)))
    every = views(data.images, args.views, args.seed)
    print(f"embedding {len(every)} images x {args.views + 1} views with the frozen {args.model} ...", file=sys.stderr)
    flat = features(embedder, [view for image in every for view in image])
    cached = flat.view(len(every), args.views + 1, -1)  # [images, views, D]
    head = ProjectionHead(cached.shape[-1], args.dim)
    torch.nn.init.orthogonal_(head.linear.weight)
    torch.nn.init.zeros_(head.linear.bias)
    optimiser = torch.optim.Adam(head.parameters(), lr=args.lr, weight_decay=1e-4)
    x_train = cached[train_idx].reshape(-1, cached.shape[-1])
    y_train = torch.as_tensor(np.repeat(data.labels[train_idx], args.views + 1))
    val_cached = cached[val_idx]
    before = held_out_scores(val_cached, data, val_idx)
    best = {"mAP@10": -1.0}
    best_state, stale = None, 0
    bar = tqdm(range(args.epochs), desc="finetune", unit="epoch", file=sys.stderr, disable=args.no_progress)
    for _epoch in bar:
        head.train()
        order = torch.randperm(len(x_train))
        losses = []
        for start in range(0, len(order), args.batch):
            rows = order[start : start + args.batch]
            loss = triplet_loss(F.normalize(head(x_train[rows]), dim=-1), y_train[rows], args.margin)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        head.eval()
        with torch.no_grad():
            now = held_out_scores(head(val_cached), data, val_idx)
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", val_mAP=f"{now['mAP@10']:.3f}")
        if now["mAP@10"] > best["mAP@10"]:
            best, stale = now, 0
            best_state = {key: value.clone() for key, value in head.state_dict().items()}
        else:
            stale += 1
            if stale >= args.patience:
                break
    assert best_state is not None
    head.load_state_dict(best_state)
    return {"head": head, "before": before, "after": best, "train": len(train_idx), "validation": len(val_idx),
            "classes": len(np.unique(data.labels)) if data.by_class else None}  # fmt: skip


def export(head: ProjectionHead, args: argparse.Namespace) -> Path:
    with tempfile.TemporaryDirectory(prefix="lookalike-head-") as tmp:
        path = Path(tmp) / "head.pt"
        torch.save(head.state_dict(), path)
        overrides = {"head": "head.pt", "model_id": args.name, "dimension": args.dim, "fit": args.fit}
        return archive.build(args.model, args.store, name=args.name, handler_overrides=overrides,
                             extra_files=[path], version=args.version)  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lookalike finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("folder", type=Path, help="DIR/<class>/<images>, or a folder of images (no classes)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"frozen backbone ({DEFAULT_MODEL})")
    p.add_argument("--fit", choices=["crop", "full"], default="crop", help="how images fill the input (crop)")
    p.add_argument("--name", help="the new archive's name and model id (<model>-ft)")
    p.add_argument("--version", default="1.0", help="the archive's version (1.0)")
    p.add_argument("--dim", type=int, default=256, help="the head's output dimension (256)")
    p.add_argument("--margin", type=float, default=0.2, help="triplet margin on squared unit distances (0.2)")
    p.add_argument("--views", type=int, default=4, help="augmented copies per image (4)")
    p.add_argument("--val", type=float, default=0.3, help="share of each class held out for validation (0.3)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=15, help="epochs without a better validation mAP (15)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--store", type=Path, default=MODEL_STORE, help="where to write the .mar (model_store/)")
    p.add_argument("--no-export", action="store_true", help="train and report only")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", type=Path, default=REPORTS_DIR / "finetune.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.name = args.name or f"{args.model}-ft"
    try:
        result = train(args)
        mar = None if args.no_export else export(result["head"], args)
    except LookalikeError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    kind = f"{result['classes']} classes" if result["classes"] else "no classes: augmented copies"
    print(f"held-out images: {result['validation']} (trained on {result['train']}; {kind})")
    rows = ((f"before ({args.model})", "before"), (f"after ({args.name})", "after"))
    width = max(len(label) for label, _ in rows)
    print(f"{'':<{width}} {'mAP@10':>7} {'recall@1':>9}")
    for label, key in rows:
        print(f"{label:<{width}} {result[key]['mAP@10']:>7.3f} {result[key]['recall@1']:>9.3f}")
    if mar:
        print(f"archive: {mar} (model id {args.name}, {args.dim}-d, version {args.version})")
    report = {key: value for key, value in result.items() if key != "head"} | {"archive": str(mar) if mar else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0
