# Lookalike — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

LOOKALIKE := $(VENV)/bin/lookalike
# One default model for every target, the one lookalike.settings defines (efficientnet_lite0).
MODEL ?=
WEIGHTS ?=
RANDOM_WEIGHTS ?=
MODELS ?=
PYTEST_ARGS ?=
SIZE ?= 100000
DIM ?= 1280
VECTORS ?= mixture,gaussian
GRAPHS ?= sq8,sq8:p0:m16:efc100

.DEFAULT_GOAL := help
.PHONY: help setup mar serve stop image demo ingest api test test-fast test-opensearch opensearch opensearch-stop loadtest loadtest-ui lint format bench bench-levers bench-index bench-ingest soak capacity clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "error: TorchServe needs Java 17: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

setup: $(STAMP) ## create .venv and install everything (idempotent)

mar: $(STAMP) ## build model_store/MODEL.mar (MODEL=efficientnet_lite0|resnet50, WEIGHTS=file, RANDOM_WEIGHTS=1, WORKERS=n)
	$(LOOKALIKE) mar $(if $(MODEL),--model $(MODEL)) $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(RANDOM_WEIGHTS),--random-weights) $(if $(WORKERS),--workers $(WORKERS))

serve: $(STAMP) ## start TorchServe with MODELS (comma-separated; built if stale) and return once they answer
	$(LOOKALIKE) serve $(if $(MODELS),--models $(MODELS))

image: $(STAMP) ## build the model-server and API container images with podman (BASE=image; default: slim Python or a local Debian 12) and print their sizes
	$(LOOKALIKE) image $(if $(BASE),--base $(BASE))

stop: ## stop everything `make serve` / `make demo` / `make api` started
	@[ -x $(LOOKALIKE) ] && $(LOOKALIKE) stop || true

demo: $(STAMP) ## the main job: build, serve, ingest real photos, start the search API, run searches
	$(LOOKALIKE) demo

ingest: $(STAMP) ## ingest a folder into the index: make ingest DIR=photos/
	$(LOOKALIKE) ingest $(DIR)

api: $(STAMP) ## run the search API in the foreground on 127.0.0.1:8000
	$(LOOKALIKE) api

opensearch: $(STAMP) ## install (first time, from Maven Central) and start a local OpenSearch 2.19 + k-NN on 127.0.0.1:9200 (OPENSEARCH_PORT)
	$(LOOKALIKE) opensearch start $(if $(OPENSEARCH_PORT),--port $(OPENSEARCH_PORT))

opensearch-stop: ## stop every running local OpenSearch node (lookalike opensearch stop)
	@[ -x $(LOOKALIKE) ] && $(LOOKALIKE) opensearch stop || true

test-opensearch: $(STAMP) ## only the tests that touch OpenSearch (a node of their own, or OPENSEARCH_URL's cluster)
	$(PY) -m pytest -m opensearch $(PYTEST_ARGS)

test: lint ## lint, then the whole test suite (starts real TorchServe instances)
	$(PY) -m pytest $(PYTEST_ARGS)

# One thread per test worker: torch, OpenCV and FAISS each take every core by default, and two workers
# on two cores then ran 4+ threads at once (measured: 64 s -> 42 s with this).
test-fast: $(STAMP) ## the fast tier (< 60 s): stand-in model server; no TorchServe, OpenSearch, Chromium or archive build
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow" -n logical $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + format check + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) ## embedding benchmark: raw in-process vs served, per precision and batch size (table + JSON)
	$(LOOKALIKE) bench embed

bench-levers: $(STAMP) ## every speed lever vs the plain fp32 path, served by TorchServe, in one run (table + JSON)
	$(LOOKALIKE) bench levers --served

bench-index: $(STAMP) ## embedded index: recall@10, p50/p95, peak RSS, build and open time (SIZE=100000 DIM=1280 GRAPHS=sq8,sq8:p0:m16:efc100 VECTORS=mixture,gaussian)
	$(LOOKALIKE) bench index --n $(SIZE) --dim $(DIM) --graphs $(GRAPHS) --vectors $(VECTORS)

soak: $(STAMP) ## capacity of the local stack, then 80 % of it for 10 min: failures, memory and CPU per process
	$(LOOKALIKE) bench soak

bench-ingest: $(STAMP) ## ingest throughput vs TorchServe alone, same run
	$(LOOKALIKE) bench ingest

capacity: $(STAMP) ## searches/s of the whole local stack per TorchServe layout (Locust)
	$(LOOKALIKE) bench capacity

LOAD_ARGS ?= --shape ramp -u 8 -t 60s
loadtest: $(STAMP) ## start what is not running, run a bounded headless Locust test (LOAD_ARGS; WORKERS=n: distributed), print the summary
	$(LOOKALIKE) loadtest $(if $(WORKERS),--workers $(WORKERS)) $(LOAD_ARGS)

loadtest-ui: $(STAMP) ## Locust's web UI on http://127.0.0.1:8089 against the local stack
	$(LOOKALIKE) loadtest --ui

clean: stop ## remove run state and built archives (keeps .venv)
	rm -rf run build reports model_store/*.mar
