"""The model catalog and the channels, stored as JSON documents (upstream keys and proxy URLs sealed)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.crypto import SecretBox
from aicy.storage.schema import channels, meta, models

JSON = dict[str, Any]
SEALED_PROXY = "sealed_proxy"  # in a channel's stored body: its proxy URL, sealed like its keys


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class CatalogStore:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    async def seed_once(self, flag: str, documents: list[JSON]) -> bool:
        """Insert ``documents`` as models the first time ``flag`` is seen; later calls do nothing."""
        async with self.engine.begin() as conn:
            if (await conn.execute(select(meta.c.value).where(meta.c.key == flag))).first() is not None:
                return False
            await conn.execute(meta.insert().values(key=flag, value=str(int(time.time()))))
            existing = set((await conn.execute(select(models.c.id))).scalars())
            for doc in documents:
                if doc["id"] not in existing:
                    await conn.execute(
                        models.insert().values(
                            id=doc["id"], body=orjson.dumps(doc).decode(), updated_at=_now_ms()
                        )
                    )
            return True

    async def list_models(self) -> list[JSON]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(models.c.body).order_by(models.c.id))).scalars().all()
        return [orjson.loads(body) for body in rows]

    async def put_model(self, doc: JSON) -> None:
        async with self.engine.begin() as conn:
            body = orjson.dumps(doc).decode()
            done = await conn.execute(
                models.update().where(models.c.id == doc["id"]).values(body=body, updated_at=_now_ms())
            )
            if not done.rowcount:
                await conn.execute(models.insert().values(id=doc["id"], body=body, updated_at=_now_ms()))

    async def delete_model(self, model_id: str) -> bool:
        async with self.engine.begin() as conn:
            return bool((await conn.execute(models.delete().where(models.c.id == model_id))).rowcount)

    async def list_channels(self) -> list[JSON]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(channels).order_by(channels.c.name))).all()
        return [self._channel(row.body, row.sealed_keys) for row in rows]

    def _channel(self, body: str, sealed: str) -> JSON:
        doc: JSON = orjson.loads(body)
        doc["api_keys"] = [self.box.open(k) for k in orjson.loads(sealed)]
        sealed_proxy = doc.pop(SEALED_PROXY, None)
        if sealed_proxy is not None:
            doc["proxy"] = self.box.open(sealed_proxy)
        return doc

    async def put_channel(self, doc: JSON) -> None:
        """Store a channel; its API keys and its proxy URL (which may hold credentials) sealed."""
        plain = {k: v for k, v in doc.items() if k not in ("api_keys", "proxy")}
        if doc.get("proxy"):
            plain[SEALED_PROXY] = self.box.seal(doc["proxy"])
        sealed = orjson.dumps([self.box.seal(k) for k in doc.get("api_keys", [])]).decode()
        values = {"body": orjson.dumps(plain).decode(), "sealed_keys": sealed, "updated_at": _now_ms()}
        async with self.engine.begin() as conn:
            done = await conn.execute(
                channels.update().where(channels.c.name == doc["name"]).values(**values)
            )
            if not done.rowcount:
                await conn.execute(channels.insert().values(name=doc["name"], **values))

    async def delete_channel(self, name: str) -> bool:
        async with self.engine.begin() as conn:
            return bool((await conn.execute(channels.delete().where(channels.c.name == name))).rowcount)

    async def version(self) -> tuple[int, int, int, int]:
        """Changes when any model or channel changes: lets a server notice CLI edits cheaply."""
        async with self.engine.connect() as conn:
            m = (await conn.execute(select(func.count(), func.max(models.c.updated_at)))).one()
            c = (
                await conn.execute(
                    select(func.count(), func.max(channels.c.updated_at)).select_from(channels)
                )
            ).one()
        return (int(m[0]), int(m[1] or 0), int(c[0]), int(c[1] or 0))
