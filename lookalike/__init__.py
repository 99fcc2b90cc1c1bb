"""Lookalike: self-hosted search by image.

bytes -> TorchServe (the `lookalike_handler` package, shipped in the .mar) -> vector -> index -> hits.
Subpackages follow that flow: serving/ (archives, the TorchServe launcher, the one model-server
client), index/ (embedded SQLite + FAISS, OpenSearch), ingest/, search and dedup, api/, and the
`lookalike` command in cli/. settings.py holds every default; errors.py every failure.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lookalike")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # run from a folder that was never installed
    __version__ = "0+unknown"
