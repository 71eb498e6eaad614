"""ModelInfo to and from plain JSON, for storage and the admin API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aicy.domain.models import ModelInfo, Prices


def model_to_json(model: ModelInfo) -> dict[str, Any]:
    data = asdict(model)
    data["reasoning_efforts"] = list(model.reasoning_efforts)
    return data


def model_from_json(data: dict[str, Any]) -> ModelInfo:
    known = {k: v for k, v in data.items() if k in ModelInfo.__dataclass_fields__}
    known["reasoning_efforts"] = tuple(known.get("reasoning_efforts") or ())
    prices = known.get("prices") or {}
    known["prices"] = Prices(
        int(prices.get("input", 0)), int(prices.get("cached_input", 0)), int(prices.get("output", 0))
    )
    return ModelInfo(**known)
