"""Lookalike: self-hosted search by image.

bytes -> TorchServe (the `lookalike_handler` package, shipped in the .mar) -> vector -> index -> hits.
Subpackages follow that flow: serving/ (archives, the TorchServe launcher, the one model-server
client), index/ (embedded SQLite + FAISS, OpenSearch), ingest/, search and dedup, api/, and the
`lookalike` command in cli/. settings.py holds every default; errors.py every failure.
"""
