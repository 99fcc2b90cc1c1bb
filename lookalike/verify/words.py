"""Visual words: candidate pairs from shared local features, for the pairs a whole-image vector
cannot propose (a photo pasted small into a collage is far from the collage by cosine, yet its
keypoints are in it).

Each SIFT descriptor is replaced by its nearest word of a vocabulary drawn from the collection's
own descriptors (WORDS of them at random: as good as k-means words, and free to make;
docs/constants.md); an image becomes the set of its words,
weighted by how rare each word is (idf); two images score the cosine of those weighted sets. Each
image's best NEIGHBOURS by that score, at MIN_SCORE or more, are candidates for the verifier, beside
its cosine neighbours. Words never decide: lookalike.verify does.

A collage shares most of its words with the photo it was pasted into and that photo's copies, which
can fill its NEIGHBOURS before a copy of the pasted photo is reached. So each image also asks once
more with its rest: the words its best neighbour lacks. The best image by those words (at REST_SCORE
or more, not already a neighbour) is one more candidate.

    vocabulary = Vocabulary.drawn(descriptor_sample, seed=0)
    bags = [vocabulary.bag(features) for features in ...]
    vocabulary.neighbours(bags) -> [[(j, score), ...] per image]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import scipy.sparse as sp

from lookalike.verify.features import Features

WORDS = 16384  # vocabulary size
PER_WORD = 11  # descriptors per word at least
WORD_EF_SEARCH = 16  # HNSW candidate list of the nearest-word search
NEIGHBOURS = 10  # candidates per image by shared words
MIN_SCORE = 0.02  # weighted-word cosine below which two images are not candidates
REST_SCORE = 0.05  # the rest's best score below which it proposes nothing (docs/constants.md)
BLOCK = 1 << 26  # scores held at once (256 MB of float32): rows scored together x images


@dataclass
class Vocabulary:
    index: faiss.Index  # the words; nearest-word search

    @classmethod
    def drawn(cls, sample: np.ndarray, seed: int = 0) -> Vocabulary:
        """Descriptors of `sample` (uint8 [n, 128]) drawn at random as the words: WORDS, or one per
        PER_WORD descriptors in a smaller sample (with a word per descriptor, no two images would
        share one)."""
        if len(sample) == 0:
            raise ValueError("no descriptors to draw a vocabulary from")
        rng = np.random.default_rng(seed)
        size = max(1, min(WORDS, len(sample) // PER_WORD))
        words = sample[rng.choice(len(sample), size, replace=False)].astype(np.float32)
        index = faiss.IndexHNSWFlat(128, 32)
        index.hnsw.efSearch = WORD_EF_SEARCH
        index.add(words)
        return cls(index)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def bag(self, features: Features | None) -> np.ndarray:
        """The distinct words of an image's descriptors (int32, sorted); none without features."""
        if features is None or features.count == 0:
            return np.empty(0, np.int32)
        _, nearest = self.index.search(np.ascontiguousarray(features.desc, dtype=np.float32), 1)
        return np.unique(nearest[:, 0]).astype(np.int32)

    def neighbours(self, bags: Sequence[np.ndarray], k: int = NEIGHBOURS, min_score: float = MIN_SCORE,
                   rest_score: float | None = REST_SCORE) -> Iterator[list[tuple[int, float]]]:  # fmt: skip
        """For each bag in order, its k best other bags [(position, score)], best first, score >= min_score;
        then, unless rest_score is None, the best other bag by the words its best neighbour lacks."""
        weights = weighted(bags, self.size)
        rows = max(1, BLOCK // max(1, len(bags)))
        for start in range(0, len(bags), rows):
            block = range(start, min(start + rows, len(bags)))
            own = weights[start : block.stop]
            near = [best(line, row, k, min_score) for row, line in zip(block, scored(own, weights), strict=True)]
            if rest_score is not None:
                rests = rest(own, bags, block, [found[0][0] if found else None for found in near])
                for found, row, line in zip(near, block, scored(rests, weights), strict=True):
                    line[[position for position, _ in found]] = -1.0
                    found += best(line, row, 1, rest_score)
            yield from near


def scored(rows: sp.csr_matrix, weights: sp.csr_matrix) -> np.ndarray:
    """Scores of each query row against every row of weights: [rows, images]."""
    return (rows @ weights.T).toarray()


def best(line: np.ndarray, row: int, k: int, min_score: float) -> list[tuple[int, float]]:
    """The k best positions of one row's scores (itself left out), best first, at min_score or more."""
    line[row] = -1.0
    top = np.argpartition(-line, min(k, len(line) - 1))[:k] if len(line) > k else np.arange(len(line))
    top = top[np.argsort(-line[top])]
    return [(int(j), float(line[j])) for j in top if line[j] >= min_score]


def rest(rows: sp.csr_matrix, bags: Sequence[np.ndarray], block: range, nearest: Sequence[int | None]) -> sp.csr_matrix:
    """`rows`, the block's weighted rows, each kept only on the words its nearest bag lacks, of unit
    length (zero without a nearest bag, or when it lacks none)."""
    lacked = [np.setdiff1d(bags[row], bags[other]) if other is not None else np.empty(0, np.int32)
              for row, other in zip(block, nearest, strict=True)]  # fmt: skip
    at = np.repeat(np.arange(len(block)), [len(words) for words in lacked])
    keep = sp.csr_matrix((np.ones(len(at), np.float32), (at, np.concatenate(lacked))), shape=rows.shape)
    return unit_rows(rows.multiply(keep).tocsr())


def weighted(bags: Sequence[np.ndarray], size: int) -> sp.csr_matrix:
    """Rows of idf-weighted word sets, each of unit length (an empty bag stays zero)."""
    rows = np.repeat(np.arange(len(bags)), [len(bag) for bag in bags])
    cols = np.concatenate(bags) if bags else np.empty(0, np.int32)
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(bags), size))
    seen = np.bincount(cols, minlength=size)
    idf = np.log(len(bags) / np.maximum(seen, 1)).astype(np.float32)
    return unit_rows(matrix @ sp.diags(idf))


def unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """`matrix` with each row scaled to unit length (a zero row stays zero)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-9).astype(np.float32)) @ matrix
