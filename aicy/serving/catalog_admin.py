"""Operators' use cases for the catalog and the channels, shared by the admin HTTP API and the CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError, InvalidRequest, NotFound
from aicy.protocol.validation import parse_model
from aicy.routing.catalog_json import model_from_json, model_to_json
from aicy.routing.default_models import DEFAULT_MODELS
from aicy.storage.catalog import CatalogStore
from aicy.types import JSON
from aicy.upstream.base import Backend
from aicy.upstream.channel_settings import proxy_problem, tls_problem, unusable_settings
from aicy.upstream.failures import UpstreamFailure
from aicy.upstream.proxy import DIRECT

SEED_FLAG = "catalog_seeded_v1"


class ChannelInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    base_url: str = Field(pattern=r"^https?://\S+$")
    wire_api: Literal["chat", "responses"] = "chat"
    api_keys: list[str] = Field(default_factory=list)
    models: list[str] | dict[str, str] = Field(default_factory=list)
    priority: int = 0
    weight: int = Field(1, ge=0)
    capacity: int | None = Field(None, ge=1)
    timeout: float = Field(600.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    write_timeout: float = Field(60.0, gt=0)
    total_timeout: float | None = Field(3600.0, gt=0)
    extra_headers: dict[str, str] = Field(default_factory=dict)
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_completion_tokens"
    json_schema_style: Literal["json_schema", "json_object_schema"] = "json_schema"
    enabled: bool = True
    proxy: str | None = Field(None, max_length=2000)
    tls_ca_file: str | None = Field(None, max_length=4096)
    tls_cert_file: str | None = Field(None, max_length=4096)
    tls_key_file: str | None = Field(None, max_length=4096)
    tls_insecure_skip_verify: bool = False
    probe_every_seconds: float | None = Field(None, ge=1)

    @field_validator("proxy")
    @classmethod
    def _usable_proxy(cls, value: str | None) -> str | None:
        """A proxy URL aicy can use (its credentials never quoted back), ``direct``, or none."""
        if value is None or not value.strip():
            return None
        if value.strip().lower() == DIRECT:
            return DIRECT
        problem = proxy_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.strip()

    @field_validator("extra_headers")
    @classmethod
    def _sendable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        """Headers that can go into a request (no line breaks, latin-1, not the ones aicy sets)."""
        problem = unusable_settings(Channel("check", "http://check/v1", extra_headers=value))
        if problem is not None:
            raise ValueError(problem.removeprefix("unusable channel settings: "))
        return value

    @field_validator("api_keys")
    @classmethod
    def _sendable_keys(cls, value: list[str]) -> list[str]:
        problem = unusable_settings(Channel("check", "http://check/v1", api_keys=tuple(value)))
        if problem is not None:
            raise ValueError(problem.removeprefix("unusable channel settings: "))
        return value

    @field_validator("tls_ca_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not Path(value).is_file():
            raise ValueError(f"{value} is not a file this server can read")
        return value

    @model_validator(mode="after")
    def _usable_tls(self) -> ChannelInput:
        """The TLS files load (so a typo is refused now, not at the first request)."""
        if self.tls_ca_file or self.tls_cert_file or self.tls_key_file:
            problem = tls_problem(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
            if problem is not None:
                raise ValueError(problem)
        return self

    def to_channel(self) -> Channel:
        data = self.model_dump()
        models = data["models"]
        data["models"] = {m: m for m in models} if isinstance(models, list) else dict(models)
        return Channel.from_json(data)


class ModelInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class Prices(BaseModel):
        """Integers of micro-units per million tokens, from 0 to 10**12 (``money.MAX_PRICE``): a negative
        price would pay the customer, and a boolean, float or string is refused rather than converted."""

        model_config = ConfigDict(extra="forbid", strict=True)

        input: int = Field(0, ge=0, le=10**12)
        cached_input: int = Field(0, ge=0, le=10**12)
        output: int = Field(0, ge=0, le=10**12)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")  # models.id: no NUL (PostgreSQL)
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    owned_by: str = "aicy"
    created: int = Field(default_factory=lambda: int(time.time()))
    reasoning_efforts: list[Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]] = Field(
        default_factory=list
    )
    default_reasoning_effort: str | None = None
    default_temperature: float = 1.0
    default_top_p: float = 1.0
    prices: Prices = Field(default_factory=Prices)
    details: dict[str, Any] = Field(default_factory=dict)


class CatalogAdmin:
    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    async def seed(self) -> bool:
        return await self.store.seed_once(SEED_FLAG, [model_to_json(m) for m in DEFAULT_MODELS])

    async def models(self) -> list[ModelInfo]:
        return [model_from_json(doc) for doc in await self.store.list_models()]

    async def put_model(self, body: Any) -> ModelInfo:
        model = parse_model(ModelInput, body)
        if model.default_reasoning_effort and model.default_reasoning_effort not in model.reasoning_efforts:
            raise InvalidRequest(
                "default_reasoning_effort must be one of reasoning_efforts.", param="default_reasoning_effort"
            )
        info = model_from_json(model.model_dump())
        await self.store.put_model(model_to_json(info))
        return info

    async def patch_model(self, model_id: str, patch: Any) -> ModelInfo:
        current = {m.id: m for m in await self.models()}.get(model_id)
        if current is None:
            raise NotFound(f"No model '{model_id}' in the catalog.", code="model_not_found")
        if not isinstance(patch, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_type")
        return await self.put_model({**model_to_json(current), **patch, "id": model_id})

    async def delete_model(self, model_id: str) -> None:
        if not await self.store.delete_model(model_id):
            raise NotFound(f"No model '{model_id}' in the catalog.", code="model_not_found")

    async def channels(self) -> list[Channel]:
        return [Channel.from_json(doc) for doc in await self.store.list_channels()]

    async def channel(self, name: str) -> Channel:
        found = {c.name: c for c in await self.channels()}.get(name)
        if found is None:
            raise NotFound(f"No channel named '{name}'.", code="channel_not_found")
        return found

    async def add_channel(self, body: Any) -> Channel:
        channel = parse_model(ChannelInput, body).to_channel()
        if channel.name in {c.name for c in await self.channels()}:
            raise InvalidRequest(
                f"A channel named '{channel.name}' exists already.",
                param="name",
                code="channel_exists",
                status=409,
            )
        await self.store.put_channel(channel.to_json(reveal_keys=True))
        return channel

    async def update_channel(self, name: str, patch: Any) -> Channel:
        current = await self.channel(name)
        if not isinstance(patch, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_type")
        merged = {**current.to_json(reveal_keys=True), **patch, "name": name}
        channel = parse_model(ChannelInput, merged).to_channel()
        await self.store.put_channel(channel.to_json(reveal_keys=True))
        return channel

    async def remove_channel(self, name: str) -> None:
        if not await self.store.delete_channel(name):
            raise NotFound(f"No channel named '{name}'.", code="channel_not_found")


async def try_channel(channel: Channel, backend: Backend, model_id: str | None = None) -> JSON:
    """Send one small real request through the channel (``backend`` is that channel) and time it."""
    model = model_id or next(iter(channel.models), None)
    if model is None:
        raise InvalidRequest(f"Channel '{channel.name}' serves no models.", param="model")
    upstream_model = channel.upstream_model(model)
    body: JSON = (
        {
            "model": upstream_model,
            "messages": [{"role": "user", "content": "Reply with OK."}],
            "max_tokens": 16,
        }
        if channel.wire_api == "chat"
        else {"model": upstream_model, "input": "Reply with OK.", "max_output_tokens": 16, "store": False}
    )
    started = time.perf_counter()
    try:
        reply = await backend.relay(body, streaming=False)
        answer = await reply.json()
        await reply.close()
    except (UpstreamFailure, AicyError) as exc:
        reason = exc.reason if isinstance(exc, UpstreamFailure) else exc.message
        return {
            "ok": False,
            "channel": channel.name,
            "model": model,
            "error": reason,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return {
        "ok": True,
        "channel": channel.name,
        "model": model,
        "upstream_model": upstream_model,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "usage": answer.get("usage"),
    }
