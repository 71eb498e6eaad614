"""Which language a page is shown in: Chinese by default, English by a switch or the browser's wish.

Order: ``?lang=`` (remembered in a cookie), the cookie, then ``Accept-Language`` by its q-values.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

Lang = Literal["zh", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh", "en")
COOKIE = "aicy_lang"
DEFAULT: Lang = "zh"


def _known(value: str | None) -> Lang | None:
    if value is None:
        return None
    primary = value.strip().lower().split("-")[0].split("_")[0]
    for lang in LANGUAGES:
        if primary == lang:
            return lang
    return None


def from_accept_language(header: str | None) -> Lang | None:
    """The most wanted of our languages in an ``Accept-Language`` header (ties: the first listed)."""
    best: tuple[float, Lang] | None = None
    for position, item in enumerate((header or "").split(",")[:32]):
        tag, _, params = item.partition(";")
        lang = _known(tag)
        if lang is None:
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0 and (best is None or weight > best[0]):
            best = (weight - position * 1e-6, lang)
    return best[1] if best else None


def choose(request: Request) -> tuple[Lang, bool]:
    """(language, whether it was asked for by ``?lang=`` and should be remembered)."""
    asked = _known(request.query_params.get("lang"))
    if asked is not None:
        return asked, True
    remembered = _known(request.cookies.get(COOKIE))
    if remembered is not None:
        return remembered, False
    return from_accept_language(request.headers.get("accept-language")) or DEFAULT, False
