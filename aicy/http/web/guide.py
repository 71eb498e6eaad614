"""The customer guide at ``/``: the model table, how to choose, how to call, streaming, the queue, billing and
the FAQ, filled in from the live catalog, the router's view of each model and the settings.

Everything that can change (model ids, series, tiers, uses, notes, prices, limits, reasoning efforts,
availability, the public URL, the queue deadline, the keep-alive interval) comes from where it is kept;
the prose around it is in :mod:`aicy.http.web.messages`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aicy.domain.models import ModelInfo
from aicy.http.web.language import Lang
from aicy.http.web.messages import TEXT
from aicy.routing.router import Router
from aicy.settings import Settings

TIER_ORDER = ("mini", "standard", "max", "flagship")
EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh")
MICRO = Decimal(1_000_000)


class _Fields(dict[str, Any]):
    """Page-wide fields filled into the prose; a field filled later (a list of models) stays as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True, slots=True)
class ModelRow:
    number: int
    id: str
    series: str
    tier: str
    uses: str
    note: str
    prices: str
    limits: str
    efforts: str
    status: str  # available | unavailable | unconfigured
    latency: str  # median latency of completed requests over the last 24 hours, "" when none


def _detail(model: ModelInfo, key: str, lang: Lang) -> str:
    """A catalog detail in ``lang`` (details hold ``{"en": …, "zh": …}`` or a plain string)."""
    value = model.details.get(key)
    if isinstance(value, dict):
        text = value.get(lang) or value.get("en") or next(iter(value.values()), "")
        return str(text)
    return "" if value is None else str(value)


def _english(model: ModelInfo, key: str) -> str:
    return _detail(model, key, "en").strip().lower()


def money(micro_units: int) -> str:
    """Micro-units of USD as a price: ``$1.25``, ``$0.125``, ``$14``→``$14.00``."""
    value = (Decimal(micro_units) / MICRO).normalize()
    text = f"{value:f}"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def tokens(count: int) -> str:
    for unit in (1000, 1024):
        if count >= unit and count % unit == 0:
            return f"{count // unit}K"
    return str(count)


def status(router: Router, model_id: str) -> str:
    if router.serves(model_id):
        return "available"
    return "unavailable" if router.configured(model_id) else "unconfigured"


def model_rows(
    models: list[ModelInfo], router: Router, lang: Lang, latencies: dict[str, float] | None = None
) -> list[ModelRow]:
    text = TEXT[lang]
    rows = []
    for number, model in enumerate(models, start=1):
        prices = model.prices
        efforts = [
            f"{e} ({'默认' if lang == 'zh' else 'default'})" if e == model.default_reasoning_effort else e
            for e in model.reasoning_efforts
        ]
        rows.append(
            ModelRow(
                number=number,
                id=model.id,
                series=_detail(model, "series", lang),
                tier=_detail(model, "tier", lang),
                uses=_detail(model, "uses", lang),
                note=_detail(model, "note", lang),
                prices=" / ".join(money(p) for p in (prices.input, prices.cached_input, prices.output)),
                limits=f"{tokens(model.context_window)} / {tokens(model.max_output_tokens)}",
                efforts=", ".join(efforts) or text["efforts_none"],
                status=status(router, model.id),
                latency=_seconds((latencies or {}).get(model.id)),
            )
        )
    return rows


def _seconds(milliseconds: float | None) -> str:
    return "" if milliseconds is None else f"{milliseconds / 1000:.1f} s"


def _of(models: list[ModelInfo], series: str, tier: str) -> list[str]:
    """Ids of ``series`` at ``tier``, newest (latest in the catalog) first."""
    found = [m.id for m in models if _english(m, "series") == series and _english(m, "tier") == tier]
    return list(reversed(found))


def choose_lines(models: list[ModelInfo], lang: Lang) -> tuple[list[str], list[str]]:
    """(general advice, coding advice) derived from the catalog's series and tiers."""
    text = TEXT[lang]
    joiner = " 或 " if lang == "zh" else " or "
    general: list[str] = []
    best = _of(models, "general", "flagship") or _of(models, "general", "max")
    cheaper = _of(models, "general", "standard") + _of(models, "general", "mini")
    if best and cheaper:
        general.append(text["choose_general"].format(best=" / ".join(best), cheaper=joiner.join(cheaper)))
    elif best or cheaper:
        general.append(text["choose_general_only"].format(best=" / ".join(best or cheaper)))
    coding: list[str] = []
    for tier, key in (
        ("mini", "choose_light"),
        ("standard", "choose_standard"),
        ("max", "choose_large"),
        ("flagship", "choose_strongest"),
    ):
        ids = _of(models, "coding", tier)
        if ids:
            coding.append(text[key].format(models=" / ".join(ids)))
    return general, coding


def _pick(models: list[ModelInfo], router: Router, series: str, tiers: tuple[str, ...]) -> str | None:
    """An example model: of ``series`` at the first of ``tiers`` that has one, served ones first."""
    for served_only in (True, False):
        for tier in tiers:
            for model_id in _of(models, series, tier):
                if not served_only or router.serves(model_id):
                    return model_id
    return None


def example_models(models: list[ModelInfo], router: Router) -> tuple[str, str]:
    """(a general model for the Responses examples, a coding model for the Chat example)."""
    served = [m.id for m in models if router.serves(m.id)]
    fallback = served[0] if served else (models[0].id if models else "MODEL_ID")
    general = _pick(models, router, "general", ("flagship", "max", "standard", "mini")) or fallback
    coding = _pick(models, router, "coding", ("mini", "standard", "max", "flagship")) or fallback
    return general, coding


def highest_effort(models: list[ModelInfo]) -> str:
    efforts = {e for m in models for e in m.reasoning_efforts}
    ranked = [e for e in EFFORT_ORDER if e in efforts]
    return ranked[-1] if ranked else "high"


def examples(public_url: str, general: str, coding: str, lang: Lang) -> dict[str, str]:
    """The guide's curl and Python examples with this server's URL and models (JSON written by ``json``,
    so any model id or prompt is quoted correctly)."""
    text = TEXT[lang]
    base = public_url.rstrip("/")
    responses_body = json.dumps(
        {"model": general, "input": text["responses_prompt"]}, ensure_ascii=False, indent=2
    )
    chat_body = json.dumps(
        {
            "model": coding,
            "messages": [
                {"role": "system", "content": text["chat_system"]},
                {"role": "user", "content": text["chat_user"]},
            ],
        },
        ensure_ascii=False,
        indent=2,
    )
    curl = (
        "curl {url} \\\n"
        '  -H "Authorization: Bearer YOUR_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        "  -d '{body}'"
    )
    python = (
        "from openai import OpenAI\n\n"
        "client = OpenAI(\n"
        f"    base_url={json.dumps(base)},\n"
        '    api_key="YOUR_API_KEY",\n'
        ")\n\n"
        "resp = client.responses.create(\n"
        f"    model={json.dumps(general)},\n"
        f"    input={json.dumps(text['python_prompt'], ensure_ascii=False)},\n"
        ")\n"
        "print(resp.output_text)\n"
    )
    return {
        "curl_responses": curl.format(url=f"{base}/responses", body=responses_body.replace("'", "'\\''")),
        "python": python,
        "curl_chat": curl.format(url=f"{base}/chat/completions", body=chat_body.replace("'", "'\\''")),
    }


def guide_context(
    models: list[ModelInfo],
    router: Router,
    settings: Settings,
    lang: Lang,
    latencies: dict[str, float] | None = None,
) -> dict[str, Any]:
    text = TEXT[lang]
    deadline_minutes = max(1, round(settings.queue_deadline_seconds / 60))
    keepalive = f"{settings.keepalive_seconds:g}"
    fill = {
        "deadline_minutes": deadline_minutes,
        "keepalive": keepalive,
        "read_timeout": int(settings.queue_deadline_seconds) + 60,
        "effort": highest_effort(models),
    }
    general, coding = example_models(models, router)
    choose_general, choose_coding = choose_lines(models, lang)
    return {
        "lang": lang,
        "other_lang": "en" if lang == "zh" else "zh",
        "t": {key: value.format_map(_Fields(fill)) for key, value in text.items()},
        "rows": model_rows(models, router, lang, latencies),
        "tiers": [(text[f"tier_name_{tier}"], text[f"tier_{tier}"]) for tier in TIER_ORDER],
        "choose_general": choose_general,
        "choose_coding": choose_coding,
        "public_url": settings.resolved_public_url.rstrip("/"),
        "examples": examples(settings.resolved_public_url, general, coding, lang),
    }
