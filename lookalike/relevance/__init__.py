"""Relevance: how well a served model's vectors find what a person would call the same image or
the same kind of image. metrics (recall@k, mAP@k from exact similarities), protocols (the
near-duplicate augmentations), and the `lookalike eval` command (evaluate.py)."""
