"""Scheduled probes in the running server, for channels that opt in (``probe_every_seconds``).

Each due channel is probed with the suite for each model it serves, one run after another, through the
same backend the router uses; the verdicts land in the probe store like a CLI run's (and, with
``AICY_PROBE_ENFORCE``, take the channel out of rotation at the next catalog reload).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo
from aicy.serving.catalog_admin import CatalogAdmin
from aicy.serving.probes.runner import Target
from aicy.serving.probes.service import probe
from aicy.serving.probes.suite import Suite
from aicy.storage.probes import ProbeStore
from aicy.upstream.base import BackendFactory

log = logging.getLogger("aicy.probes")


class ProbeSchedule:
    def __init__(
        self, admin: CatalogAdmin, backends: BackendFactory, store: ProbeStore, suite: Suite
    ) -> None:
        self.admin = admin
        self.backends = backends
        self.store = store
        self.suite = suite

    async def due(self, now: float) -> list[Channel]:
        last = await self.store.last_runs()
        return [
            c
            for c in await self.admin.channels()
            if c.enabled and c.probe_every_seconds and now - last.get(c.name, 0) >= c.probe_every_seconds
        ]

    async def run_due(self) -> int:
        """Probe every channel that is due; the number of runs made."""
        catalog = {m.id: m for m in await self.admin.models()}
        runs = 0
        for channel in await self.due(time.time()):
            backend = self.backends(channel)
            for model_id in channel.models:
                model = catalog.get(model_id) or ModelInfo(model_id, 1, 1)
                try:
                    done = await probe(Target(channel, backend, model), self.suite, self.store)
                except Exception:  # one channel's trouble never stops the others' probes
                    log.exception("probing channel %s (%s) failed", channel.name, model_id)
                    continue
                runs += 1
                for check in done.failed:
                    log.warning(
                        "probe of channel %s (%s): %s failed: %s",
                        channel.name,
                        model_id,
                        check.name,
                        check.reason,
                    )
        return runs

    async def watch(self, tick: float) -> None:
        while True:
            await asyncio.sleep(tick)
            try:
                await self.run_due()
            except Exception:
                log.exception("a scheduled probe failed")
