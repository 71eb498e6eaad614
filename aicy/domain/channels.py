"""Channels: the upstream backends an operator configures (pure data; persistence is in storage, the
dialect rewrite of a request body in upstream)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aicy.types import WireApi


@dataclass(frozen=True, slots=True)
class Channel:
    """An OpenAI-compatible upstream.

    ``models`` maps a catalog model id to the name the upstream knows it by (often the same).
    ``capacity`` is the most requests in flight at once (None: unlimited). ``timeout`` bounds the wait for
    the first byte and each later read. Two dialect settings for Chat upstreams that predate parts of the
    API: ``max_tokens_field`` is how the output limit is spelled, ``json_schema_style`` is ``json_schema``
    (OpenAI) or ``json_object_schema`` (llama-cpp-python's ``{"type": "json_object", "schema": …}``).
    """

    name: str
    base_url: str
    wire_api: WireApi = "chat"
    api_keys: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    capacity: int | None = None
    timeout: float = 600.0
    connect_timeout: float = 10.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    max_tokens_field: str = "max_completion_tokens"
    json_schema_style: str = "json_schema"
    enabled: bool = True

    def upstream_model(self, model_id: str) -> str:
        return self.models.get(model_id) or model_id

    def to_json(self, *, reveal_keys: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["api_keys"] = list(self.api_keys) if reveal_keys else [_mask(k) for k in self.api_keys]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["api_keys"] = tuple(known.get("api_keys") or ())
        return cls(**known)


def _mask(key: str) -> str:
    return key[:3] + "…" + key[-4:] if len(key) > 10 else "…"
