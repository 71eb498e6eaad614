"""Stored responses (``store: true``), owned by an account, with their input items."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import responses
from aicy.storage.tx import Transactor
from aicy.types import JSON


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    previous_response_id: str | None
    body: JSON
    input_items: list[JSON]
    channel: str | None = None


_SAVE = (
    "INSERT INTO responses "
    "(id, account_id, created_at, previous_response_id, body, input_items, channel, upstream_id) "
    "VALUES (:id, :account, :now, :previous, :body, :items, :channel, :upstream_id)"
)
_GET = (
    "SELECT id, previous_response_id, body, input_items, channel FROM responses "
    "WHERE id = :id AND account_id = :account"
)


class ResponseStore:
    """Saved and read on the request path, so through the hot-path transactor (see ``storage.tx``)."""

    def __init__(self, engine: AsyncEngine, transactor: Transactor | None = None) -> None:
        self.engine = engine
        self.tx = transactor or Transactor(engine)

    async def save(
        self,
        account_id: str,
        body: JSON,
        input_items: list[JSON],
        channel: str | None = None,
        upstream_id: str | None = None,
    ) -> None:
        """Under aicy's own id; ``upstream_id`` is the id a relaying upstream gave the same response."""
        values = {
            "id": body["id"],
            "account": account_id,
            "now": int(time.time()),
            "previous": body.get("previous_response_id"),
            "body": orjson.dumps(body).decode(),
            "items": orjson.dumps(input_items).decode(),
            "channel": channel,
            "upstream_id": upstream_id,
        }
        await self.tx.run(lambda tx: tx.execute(_SAVE, values))

    async def get(self, account_id: str, response_id: str) -> StoredResponse | None:
        row = await self.tx.run(
            lambda tx: tx.execute(_GET, {"id": response_id, "account": account_id}).first(), write=False
        )
        if row is None:
            return None
        return StoredResponse(row[0], row[1], orjson.loads(row[2]), orjson.loads(row[3]), row[4])

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
