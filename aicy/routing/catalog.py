"""The model catalog: which models exist (their descriptions are ``aicy.domain.models``)."""

from __future__ import annotations

from collections.abc import Iterable

from aicy.domain.models import ModelInfo


class Catalog:
    def __init__(self, models: Iterable[ModelInfo] = ()) -> None:
        self._models = {m.id: m for m in models}

    def add(self, model: ModelInfo) -> None:
        self._models[model.id] = model

    def remove(self, model_id: str) -> None:
        self._models.pop(model_id, None)

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def all(self) -> list[ModelInfo]:
        return sorted(self._models.values(), key=lambda m: m.id)
