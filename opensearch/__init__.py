"""Lookalike's search side: vectors into a k-NN index (OpenSearch or embedded), look-alikes out.

vector (from TorchServe) -> index -> hits. Modules here import the handler's wire
format and the operator client, never the reverse.
"""
