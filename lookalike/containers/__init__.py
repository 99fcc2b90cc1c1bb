"""Container images of the model server and the API (`lookalike image`, `make image`)."""
