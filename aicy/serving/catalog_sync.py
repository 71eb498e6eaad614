"""Keeps a running server's router in step with the stored catalog and channels, and probes sick channels."""

from __future__ import annotations

import asyncio
import logging

from aicy.domain.channels import Channel
from aicy.routing.router import ChannelEntry, Router
from aicy.serving.admission import Admission
from aicy.serving.catalog_admin import CatalogAdmin
from aicy.storage.probes import ProbeStore
from aicy.upstream.base import Backend, BackendFactory
from aicy.upstream.failures import UpstreamFailure

log = logging.getLogger("aicy.catalog")


class CatalogSync:
    def __init__(
        self,
        admin: CatalogAdmin,
        router: Router,
        backends: BackendFactory,
        admission: Admission,
        probes: ProbeStore | None = None,
    ) -> None:
        """``probes``: with it (``AICY_PROBE_ENFORCE``), a channel whose latest probe run failed a check is
        kept out of rotation until a later run passes."""
        self.admin = admin
        self.admission = admission
        self.router = router
        self.backends = backends
        self.probes = probes
        self._version: tuple[int, ...] | None = None

    async def _current_version(self) -> tuple[int, ...]:
        probed = (await self.probes.version(),) if self.probes is not None else ()
        return (*await self.admin.store.version(), *probed)

    async def _failing(self) -> set[str]:
        if self.probes is None:
            return set()
        failing = {name for name, failed in (await self.probes.latest_failures()).items() if failed}
        for name in sorted(failing):
            log.warning("channel %s is out of rotation: its latest probe run failed a check", name)
        return failing

    async def load(self) -> None:
        self._version = await self._current_version()
        self.router.set_catalog(await self.admin.models())
        failing = await self._failing()
        self.router.set_channels(
            self._entry(c) for c in await self.admin.channels() if c.enabled and c.name not in failing
        )

    def _entry(self, channel: Channel) -> ChannelEntry:
        self.admission.set_capacity(channel.name, channel.capacity)
        breaker = self.router.breaker(channel.name)
        return ChannelEntry(self.backends(channel), channel.models, channel.priority, channel.weight, breaker)

    async def reload_if_changed(self) -> bool:
        if await self._current_version() == self._version:
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
                await probe_once(self.router, entry.backend)


async def probe_once(router: Router, backend: Backend) -> bool:
    """Ask a channel out of rotation whether it answers; routing keeps the score."""
    try:
        await backend.probe()
    except UpstreamFailure as exc:
        router.record_failure(backend.name, exc.reason, fatal=exc.auth)
        return False
    router.record_success(backend.name)
    log.info("channel %s is back in rotation", backend.name)
    return True
