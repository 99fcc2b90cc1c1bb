"""Which model serves a catalogue, and which one a blue/green rollout is building: the one record
that the API, ingest and `lookalike admin rollout` read, so that a query vector is only ever
compared with index vectors of the same model.

A catalogue (Settings.alias) has one live pair (the model server's endpoint that embeds queries,
and the index that holds that model's vectors) and, while a rollout builds, a next pair that every
write reaches too. Where it is kept:

- OpenSearch: the alias names the live physical index and `<alias>-next` the one being built;
  each index's mapping `_meta` records its model, dimension and endpoint. Switching is one atomic
  alias update (both aliases move together), seen by every API replica of the cluster.
- embedded: `<data_dir>/<alias>.live.json`, replaced atomically (write, then rename); each
  model's vectors live in their own folder, `<alias>-<model>-<dimension>`.

A catalogue that never had a rollout has no record: its pair is the configured endpoint
(LOOKALIKE_MODEL) and the model that endpoint serves, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from lookalike.errors import IndexMismatch, IndexUnavailable
from lookalike.settings import Settings

NEXT_SUFFIX = "-next"


@dataclass(frozen=True)
class Pair:
    """A model-server endpoint and the index that holds its vectors."""

    endpoint: str  # TorchServe's model name, e.g. efficientnet_lite0
    model: str  # the vector space the endpoint serves (its answers' "model")
    dimension: int
    index: str | None = None  # OpenSearch: the physical index; embedded: None (one folder per model)

    def settings(self, settings: Settings) -> Settings:
        """`settings` that reach this pair: its endpoint, and its physical index (OpenSearch; else the
        configured index or alias stands)."""
        return settings.replace(model=self.endpoint, **({"index": self.index} if self.index else {}))


@dataclass(frozen=True)
class State:
    live: Pair | None  # None: no record yet (the configured endpoint serves)
    next: Pair | None = None  # a rollout building


def read(settings: Settings) -> State:
    """The catalogue's record; IndexUnavailable (503) when the index cannot be asked now."""
    if not settings.opensearch_url:
        return _read_file(settings)
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    from lookalike.index.opensearch_client import unavailable

    try:
        return _read_opensearch(settings)
    except (OSConnectionError, TransportError) as exc:
        raise unavailable(exc, settings) or exc from exc


def begin(settings: Settings, live: Pair, nxt: Pair) -> None:
    """Record `nxt` as the pair being built beside `live` (writes reach both from now on)."""
    if settings.opensearch_url:
        from lookalike.index.opensearch_client import connect

        client = connect(settings)
        _set_endpoint(client, nxt)
        if live.index:
            _set_endpoint(client, live)
        actions: list[dict] = [{"remove": {"index": old, "alias": next_alias(settings)}}
                               for old in _targets(client, next_alias(settings))]  # fmt: skip
        actions.append({"add": {"index": nxt.index, "alias": next_alias(settings)}})
        client.indices.update_aliases(body={"actions": actions})
    else:
        _write_file(settings, State(live, nxt))


def switch(settings: Settings, state: State) -> None:
    """Make `state.next` live, in one step; the old live index stays (a rollback resumes into it)."""
    if state.next is None or state.live is None:
        raise IndexMismatch("no rollout is building: nothing to switch to")
    if settings.opensearch_url:
        from lookalike.index.opensearch_client import connect

        client = connect(settings)
        actions: list[dict] = []
        if state.live.index:
            actions.append({"remove": {"index": state.live.index, "alias": settings.alias}})
        actions += [{"add": {"index": state.next.index, "alias": settings.alias}},
                    {"remove": {"index": state.next.index, "alias": next_alias(settings)}}]  # fmt: skip
        client.indices.update_aliases(body={"actions": actions})
    else:
        _write_file(settings, State(state.next, None))


def abandon(settings: Settings, current: Pair, nxt: Pair) -> None:
    """Stop building `nxt`: writes reach `current` only (OpenSearch keeps the half-built index,
    without its alias: delete it when you like)."""
    if settings.opensearch_url:
        from lookalike.index.opensearch_client import connect

        connect(settings).indices.update_aliases(
            body={"actions": [{"remove": {"index": nxt.index, "alias": next_alias(settings)}}]})  # fmt: skip
    else:
        _write_file(settings, State(current, None))


def next_alias(settings: Settings) -> str:
    return f"{settings.alias}{NEXT_SUFFIX}"


# -- OpenSearch ---------------------------------------------------------------------------------
def _targets(client, alias: str) -> list[str]:
    from lookalike.index.opensearch_index import alias_targets

    return alias_targets(client, alias)


def _pair_of(client, name: str, fallback_endpoint: str) -> Pair:
    from lookalike.index.opensearch_index import mappings

    mapping = mappings(client, name)
    meta = mapping.get("_meta", {})
    dimension = mapping.get("properties", {}).get("vector", {}).get("dimension") or meta.get("dimension")
    return Pair(meta.get("endpoint") or fallback_endpoint, str(meta.get("model")), int(dimension), name)


def _read_opensearch(settings: Settings) -> State:
    from lookalike.index.opensearch_client import connect

    client = connect(settings)
    live = _targets(client, settings.alias)
    building = _targets(client, next_alias(settings))
    if len(live) > 1 or len(building) > 1:
        raise IndexMismatch(f"alias {settings.alias} or {next_alias(settings)} points at several indices")
    return State(_pair_of(client, live[0], settings.model) if live else None,
                 _pair_of(client, building[0], settings.model) if building else None)  # fmt: skip


def _set_endpoint(client, pair: Pair) -> None:
    from lookalike.index.opensearch_index import mappings

    assert pair.index, "an OpenSearch pair names its physical index"
    meta = mappings(client, pair.index).get("_meta", {})
    if meta.get("endpoint") != pair.endpoint:  # PUT _mapping replaces the whole _meta: merge
        client.indices.put_mapping(index=pair.index, body={"_meta": {**meta, "endpoint": pair.endpoint}})


# -- embedded -----------------------------------------------------------------------------------
def state_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / f"{settings.alias}.live.json"


def _read_file(settings: Settings) -> State:
    path = state_file(settings)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return State(None)
    except OSError as exc:
        raise IndexUnavailable(f"cannot open the embedded index at {settings.data_dir}: {exc}") from exc
    except ValueError as exc:
        raise IndexMismatch(f"cannot read {path}: {exc}") from exc
    return State(*(Pair(**doc[key]) if doc.get(key) else None for key in ("live", "next")))


def _write_file(settings: Settings, state: State) -> None:
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"live": asdict(state.live) if state.live else None, "next": asdict(state.next) if state.next else None}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(partial, path)
