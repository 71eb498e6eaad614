"""Maps a model to the backends that can serve it, best first."""

from __future__ import annotations

from aicy.routing.catalog import Catalog, ModelInfo
from aicy.upstream.base import Backend


class Router:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._backends: dict[str, list[Backend]] = {}

    def register(self, model: ModelInfo, backend: Backend) -> None:
        self.catalog.add(model)
        self._backends.setdefault(model.id, []).append(backend)

    def servable(self) -> list[ModelInfo]:
        return [m for m in self.catalog.all() if self._backends.get(m.id)]

    def candidates(self, model_id: str) -> list[Backend]:
        return list(self._backends.get(model_id, ()))
