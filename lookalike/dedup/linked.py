"""One union-find over image ids: the cosine links of `find_groups`, the copy and scene links of
`find_verified`."""

from __future__ import annotations


class Linked:
    """Union-find over image ids (only ids that have a link are held)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def root(self, x: str) -> str:
        while self.parent.setdefault(x, x) != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def link(self, a: str, b: str) -> None:
        self.parent[self.root(a)] = self.root(b)

    def components(self) -> list[list[str]]:
        members: dict[str, list[str]] = {}
        for doc_id in list(self.parent):
            members.setdefault(self.root(doc_id), []).append(doc_id)
        return [sorted(ids) for ids in members.values() if len(ids) >= 2]
