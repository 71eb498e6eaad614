"""The request log of one account, filtered and paginated (the console's usage page and its CSV export)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import usage_log

LOG_COLUMNS = (
    "created_at",
    "key_id",
    "model",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
    "latency_ms",
    "ttft_ms",
    "queue_ms",
    "status",
)


@dataclass(frozen=True, slots=True)
class LogFilter:
    account_id: str
    since: int  # Unix seconds
    until: int
    model: str | None = None
    key_id: str | None = None
    status: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        query = query.where(
            usage_log.c.account_id == self.account_id,
            usage_log.c.created_at >= self.since * 1000,
            usage_log.c.created_at < self.until * 1000,
        )
        if self.model:
            query = query.where(usage_log.c.model == self.model)
        if self.key_id:
            query = query.where(usage_log.c.key_id == self.key_id)
        if self.status:
            query = query.where(usage_log.c.status == self.status)
        return query


async def log_page(
    engine: AsyncEngine, wanted: LogFilter, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """(lines newest first, how many match in all)."""
    columns = [usage_log.c[name] for name in LOG_COLUMNS]
    page = wanted.apply(select(*columns)).order_by(usage_log.c.id.desc()).offset(offset).limit(limit)
    total = wanted.apply(select(func.count()).select_from(usage_log))
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in (await conn.execute(page)).all()]
        count = int((await conn.execute(total)).scalar_one())
    return rows, count


async def log_values(engine: AsyncEngine, account_id: str, column: str) -> list[str]:
    """The distinct values of ``column`` (model, key_id, status) in an account's log, for filter menus."""
    field = usage_log.c[column]
    query = select(field).where(usage_log.c.account_id == account_id).distinct().order_by(field).limit(500)
    async with engine.connect() as conn:
        return [str(v) for v in (await conn.execute(query)).scalars() if v is not None]


@dataclass(frozen=True, slots=True)
class ChannelLatency:
    requests: int
    latency_ms: float  # medians
    ttft_ms: float | None


async def channel_latencies(engine: AsyncEngine, since: int, most: int = 20_000) -> dict[str, ChannelLatency]:
    """Each channel's median latency and time to first token over its latest requests since ``since``
    (Unix seconds; at most ``most`` requests in all are read)."""
    query = (
        select(usage_log.c.channel, usage_log.c.latency_ms, usage_log.c.ttft_ms)
        .where(usage_log.c.created_at >= since * 1000, usage_log.c.channel.is_not(None))
        .order_by(usage_log.c.id.desc())
        .limit(most)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    latencies: dict[str, list[int]] = {}
    firsts: dict[str, list[int]] = {}
    for channel, latency, ttft in rows:
        latencies.setdefault(channel, []).append(latency)
        if ttft is not None:
            firsts.setdefault(channel, []).append(ttft)
    return {
        channel: ChannelLatency(
            len(values),
            statistics.median(values),
            statistics.median(firsts[channel]) if channel in firsts else None,
        )
        for channel, values in latencies.items()
    }


async def model_latencies(engine: AsyncEngine, since: int, most: int = 20_000) -> dict[str, float]:
    """Each model's median latency (ms) over its latest completed requests since ``since`` (Unix seconds)."""
    query = (
        select(usage_log.c.model, usage_log.c.latency_ms)
        .where(usage_log.c.created_at >= since * 1000, usage_log.c.status == "completed")
        .order_by(usage_log.c.id.desc())
        .limit(most)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    latencies: dict[str, list[int]] = {}
    for model, latency in rows:
        latencies.setdefault(model, []).append(latency)
    return {model: statistics.median(values) for model, values in latencies.items()}
