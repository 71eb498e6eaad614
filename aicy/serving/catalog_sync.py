"""Keeps a running server's router in step with the stored catalog and channels, and probes sick channels."""

from __future__ import annotations

import asyncio
import logging

from aicy.domain.channels import Channel
from aicy.routing.router import ChannelEntry, Router
from aicy.serving.admission import Admission
from aicy.serving.catalog_admin import CatalogAdmin
from aicy.upstream.http1 import Http1Client
from aicy.upstream.openai_http import TRANSPORT_ERRORS, HttpBackend

log = logging.getLogger("aicy.catalog")


class CatalogSync:
    def __init__(
        self, admin: CatalogAdmin, router: Router, client: Http1Client, admission: Admission
    ) -> None:
        self.admin = admin
        self.admission = admission
        self.router = router
        self.client = client
        self._version: tuple[int, ...] | None = None

    async def load(self) -> None:
        self._version = await self.admin.store.version()
        self.router.set_catalog(await self.admin.models())
        self.router.set_channels(self._entry(c) for c in await self.admin.channels() if c.enabled)

    def _entry(self, channel: Channel) -> ChannelEntry:
        self.admission.set_capacity(channel.name, channel.capacity)
        breaker = self.router.breaker(channel.name)
        backend = HttpBackend(channel, self.client, breaker)
        return ChannelEntry(backend, channel.models, channel.priority, channel.weight, breaker)

    async def reload_if_changed(self) -> bool:
        if await self.admin.store.version() == self._version:
            return False
        await self.load()
        return True

    async def watch(self, interval: float) -> None:
        """Pick up changes made by the CLI (or another replica) while the server runs."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload_if_changed()
            except Exception:
                log.exception("reloading the catalog failed")

    async def probe(self, interval: float) -> None:
        """Channels whose breaker cooled down are asked for their model list before taking customers again."""
        while True:
            await asyncio.sleep(interval)
            for entry in self.router.probe_due():
                backend = entry.backend
                assert isinstance(backend, HttpBackend)
                await probe_once(backend)


async def probe_once(backend: HttpBackend) -> bool:
    channel = backend.channel
    headers = {k: v for k, v in backend.headers(False).items() if k != "content-type"}
    try:
        reply = await backend.client.request(
            "GET",
            channel.base_url.rstrip("/") + "/models",
            headers=headers,
            connect_timeout=channel.connect_timeout,
            read_timeout=channel.connect_timeout + 5,
        )
    except TRANSPORT_ERRORS as exc:
        backend.breaker.record_failure(f"probe: {type(exc).__name__}")
        return False
    status = reply.status
    reply.close()
    if status < 400 or status in (404, 405):
        backend.breaker.record_success()
        log.info("channel %s is back in rotation", channel.name)
        return True
    backend.breaker.record_failure(f"probe: HTTP {status}", fatal=status in (401, 403))
    return False
