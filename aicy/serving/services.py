"""Everything a request handler needs, built once per app by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.accounting.key_cache import KeyCache
from aicy.accounting.ratelimit import RateLimiter
from aicy.accounting.risk import LeakDetector
from aicy.engine.llama import LlamaEngine
from aicy.routing.router import Router
from aicy.serving.admission import Admission
from aicy.serving.catalog_admin import CatalogAdmin
from aicy.settings import Settings
from aicy.storage.billing import BillingStore
from aicy.storage.keys import KeyStore
from aicy.storage.responses import ResponseStore
from aicy.upstream.base import BackendFactory


@dataclass(slots=True)
class Services:
    settings: Settings
    db: AsyncEngine
    keys: KeyStore
    responses: ResponseStore
    router: Router
    catalog: CatalogAdmin
    backend_for: BackendFactory  # a channel's backend, for the admin API's channel test
    billing: BillingStore
    limiter: RateLimiter
    leaks: LeakDetector
    node: str
    admission: Admission
    key_cache: KeyCache
    engine: LlamaEngine | None = None
