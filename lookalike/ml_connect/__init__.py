"""Image search inside OpenSearch: ml-commons calls our TorchServe (plan.py: the requests;
connect.py: applying them to a cluster, idempotently)."""
