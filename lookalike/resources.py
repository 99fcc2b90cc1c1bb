"""Files the package reads at run time: the OpenSearch mapping, the node's templates and pinned
artifacts, TorchServe's and the archive's config, the locustfile.

They are package data, read through importlib.resources: a wheel carries them under
lookalike/assets/; in a checkout lookalike/assets/ links to the repository's opensearch/,
model_store/ and loadtest/ folders, so an installed package and a checkout read the same files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def asset(*parts: str) -> Path:
    """The path of a packaged file or folder, e.g. asset("opensearch", "mapping.json")."""
    return Path(str(files("lookalike").joinpath("assets", *parts)))
