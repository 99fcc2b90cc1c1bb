"""Lookalike's operator side: build archives, run TorchServe, call it.

bytes -> handler (inside TorchServe) -> vector; this package builds and starts
the server and is its client. It imports the handler package, never the reverse.
"""
