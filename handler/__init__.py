"""Lookalike's TorchServe handler: image bytes in, one L2-normalised embedding out.

The package ships inside the `.mar`, so it imports only torch, torchvision, PIL,
numpy and the standard library. Every module except `ts_handler` imports without
TorchServe, so tests and benchmarks call the same functions the server runs.
"""
