"""Stored responses (``store: true``), owned by an account, with their input items."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import responses
from aicy.types import JSON


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    previous_response_id: str | None
    body: JSON
    input_items: list[JSON]
    channel: str | None = None


class ResponseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(
        self, account_id: str, body: JSON, input_items: list[JSON], channel: str | None = None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                responses.insert().values(
                    id=body["id"],
                    account_id=account_id,
                    created_at=int(time.time()),
                    previous_response_id=body.get("previous_response_id"),
                    body=orjson.dumps(body).decode(),
                    input_items=orjson.dumps(input_items).decode(),
                    channel=channel,
                )
            )

    async def get(self, account_id: str, response_id: str) -> StoredResponse | None:
        query = select(responses).where(responses.c.id == response_id, responses.c.account_id == account_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return StoredResponse(
            row.id,
            row.previous_response_id,
            orjson.loads(row.body),
            orjson.loads(row.input_items),
            row.channel,
        )

    async def delete(self, account_id: str, response_id: str) -> bool:
        query = responses.delete().where(responses.c.id == response_id, responses.c.account_id == account_id)
        async with self.engine.begin() as conn:
            return bool((await conn.execute(query)).rowcount)

    async def history(self, account_id: str, response_id: str) -> tuple[list[JSON], str | None] | None:
        """The conversation up to and including ``response_id``: each turn's input items then its output.

        Also the channel that served ``response_id``. ``None`` when ``response_id`` itself is unknown to this
        account. A deleted ancestor ends the walk.
        """
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        next_id: str | None = response_id
        while next_id is not None and next_id not in seen:
            seen.add(next_id)
            stored = await self.get(account_id, next_id)
            if stored is None:
                if not chain:
                    return None
                break
            chain.append(stored)
            next_id = stored.previous_response_id
        items: list[JSON] = []
        for stored in reversed(chain):
            items += stored.input_items
            items += stored.body.get("output", [])
        return items, chain[0].channel
