"""Routes of the pages: ``/`` (the customer guide) and ``/static`` (the stylesheet).

Every page goes out with headers that keep it from being framed, sniffed or running anything but our own
files (no inline script anywhere, so the Content-Security-Policy needs no exceptions).
"""

from __future__ import annotations

import time

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from aicy.http.web.guide import guide_context
from aicy.http.web.language import COOKIE, choose
from aicy.serving.services import Services
from aicy.storage.usage_query import model_latencies

PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-cache",
    "vary": "Accept-Language, Cookie",
}
LANGUAGE_COOKIE_SECONDS = 365 * 86400


def templates() -> Environment:
    """The pages' templates, autoescaped: model notes and account names are operators' and customers' text."""
    return Environment(
        loader=PackageLoader("aicy.http.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=False,
    )


def page(html: str, remember_lang: str | None = None) -> Response:
    response = HTMLResponse(html, headers=PAGE_HEADERS)
    if remember_lang is not None:
        response.set_cookie(
            COOKIE, remember_lang, max_age=LANGUAGE_COOKIE_SECONDS, httponly=True, samesite="lax"
        )
    return response


def web_routes() -> list[BaseRoute]:
    env = templates()

    async def guide(request: Request) -> Response:
        services: Services = request.app.state.services
        lang, remember = choose(request)
        models = services.router.catalog.all()
        latencies = await model_latencies(services.billing.engine, int(time.time()) - 86_400)
        context = guide_context(models, services.router, services.settings, lang, latencies)
        html = env.get_template("guide.html").render(**context)
        return page(html, lang if remember else None)

    return [
        Route("/", guide, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("aicy.http.web", "static")]), name="static"),
    ]
