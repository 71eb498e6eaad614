"""Composition root: ``create_app(settings)`` wires storage, engine, routing and the HTTP edge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from aicy.engine.llama import LlamaEngine
from aicy.engine.model_file import default_model_path
from aicy.errors import AicyError
from aicy.http import errors
from aicy.http.middleware import RequestIdMiddleware
from aicy.http.routes import routes
from aicy.routing.catalog import Catalog, embedded_model
from aicy.routing.router import Router
from aicy.serving.services import Services
from aicy.settings import Settings
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore
from aicy.storage.responses import ResponseStore
from aicy.upstream.embedded import EmbeddedBackend

log = logging.getLogger("aicy")


def load_engine(settings: Settings) -> LlamaEngine:
    path = settings.engine_model_path or default_model_path()
    return LlamaEngine(path, n_ctx=settings.engine_context, n_threads=settings.engine_threads)


def create_app(settings: Settings, on_ready: Callable[[], None] | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = create_engine(settings.resolved_database_url)
        await migrate(db)
        router = Router(Catalog())
        engine = await asyncio.to_thread(load_engine, settings) if settings.engine_enabled else None
        if engine is not None:
            router.register(
                embedded_model(settings.engine_context, settings.engine_max_output_tokens),
                EmbeddedBackend(engine),
            )
        app.state.services = Services(settings, db, KeyStore(db), ResponseStore(db), router, engine)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if engine is not None:
                engine.close()
            await db.dispose()

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["x-request-id", "x-aicy-model"],
                max_age=86400,
            ),
        ],
        exception_handlers={
            AicyError: errors.on_aicy_error,
            HTTPException: errors.on_http_error,
            Exception: errors.on_unexpected,
        },
    )
