"""The live customer guide at ``/``: built from the catalog and settings, in Chinese or English, escaped,
behind strict headers, and its examples run verbatim against this server with only the key filled in."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.fault_upstream import WORDS, FaultUpstream
from tests.support import MODEL, AicyProcess, Operator


def _page(aicy: AicyProcess, **kwargs: Any) -> httpx.Response:
    reply = httpx.get(f"{aicy.root_url}/", timeout=30, **kwargs)
    assert reply.status_code == 200, reply.text
    return reply


def _code(page: str, element_id: str) -> str:
    found = re.search(rf'<code id="{element_id}">(.*?)</code>', page, re.DOTALL)
    assert found is not None, element_id
    return html.unescape(found.group(1))


def _row(page: str, model_id: str) -> str:
    found = re.search(
        rf"<tr class=\"status-(\w+)\">\s*<td>\d+</td><td><code>{re.escape(model_id)}</code>", page
    )
    assert found is not None, model_id
    return found.group(1)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("guide").start()
    yield server
    server.stop()


def test_the_page_lists_the_catalog_with_live_status_in_chinese(
    aicy: AicyProcess, admin: httpx.Client
) -> None:
    reply = _page(aicy)
    page = reply.text
    assert '<html lang="zh-CN">' in page and "模型列表" in page
    catalog = admin.get("/admin/models").json()["data"]
    assert len(catalog) >= 2
    for model in catalog:
        assert f"<code>{model['id']}</code>" in page
    assert _row(page, MODEL) == "available"
    assert _row(page, "gpt-5.2") == "unconfigured"  # in the catalog, no channel serves it here
    assert "$1.75 / $0.175 / $14.00" in page  # gpt-5.2's prices per million tokens, from the catalog
    assert "400K / 128K" in page
    assert "10 分钟" in page  # the queue deadline, from the settings (600 s)
    assert _code(page, "base-url") == aicy.base_url


def test_english_by_switch_cookie_and_accept_language(aicy: AicyProcess) -> None:
    switched = _page(aicy, params={"lang": "en"})
    assert '<html lang="en">' in switched.text and "Which model should I use?" in switched.text
    cookie = switched.cookies.get("aicy_lang")
    assert cookie == "en"
    assert '<html lang="en">' in _page(aicy, cookies={"aicy_lang": "en"}).text
    assert '<html lang="en">' in _page(aicy, headers={"accept-language": "en-US,en;q=0.9"}).text
    assert '<html lang="en">' in _page(aicy, headers={"accept-language": "zh-CN;q=0.4, en;q=0.8"}).text
    assert '<html lang="zh-CN">' in _page(aicy, headers={"accept-language": "zh-TW,zh;q=0.9,en;q=0.5"}).text
    for junk in ("fr-FR", "en;q=abc", "\u00e9\u00e9;q=0.5", ",,;;", "*", "en;q=0"):
        reply = _page(aicy, headers={"accept-language": junk.encode("utf-8")})
        assert '<html lang="zh-CN">' in reply.text, junk
    assert '<html lang="zh-CN">' in _page(aicy, params={"lang": "klingon"}).text


def test_headers_forbid_framing_sniffing_and_inline_script(aicy: AicyProcess) -> None:
    reply = _page(aicy)
    policy = reply.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in reply.text and "style=" not in reply.text
    css = httpx.get(f"{aicy.root_url}/static/web.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    missing = httpx.get(f"{aicy.root_url}/static/../aicy.db", timeout=30)
    assert missing.status_code == 404


def test_catalog_text_is_escaped(aicy: AicyProcess, operator: Operator) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    model = operator.model(
        f"guide-{time.monotonic_ns()}",
        details={"note": {"zh": hostile, "en": hostile}, "series": "<b>s</b>", "tier": {"zh": "'\"&"}},
    )
    page = _page(aicy).text
    assert "<script" not in page and "<img" not in page and "<b>s</b>" not in page
    assert hostile in html.unescape(page)  # shown as text
    assert _row(page, model) == "unconfigured"


def test_the_examples_run_verbatim_with_only_the_key_filled_in(
    aicy: AicyProcess, api_key: str, operator: Operator, upstream: FaultUpstream
) -> None:
    """The page picks served models for its examples; here a channel serves the catalog's models, so the
    examples name gpt-5.2 and gpt-5.1-codex-mini as the customer guide does."""
    operator.channel(
        f"guide-{time.monotonic_ns()}",
        upstream.base_url,
        {"gpt-5.2": "up-general", "gpt-5.1-codex-mini": "up-coding"},
        wire_api="chat",
    )
    page = _page(aicy).text
    assert _row(page, "gpt-5.2") == "available"
    python = _code(page, "python-responses")
    assert '"gpt-5.2"' in python and aicy.base_url in python
    ran = subprocess.run(
        [sys.executable, "-c", python.replace("YOUR_API_KEY", api_key)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "".join(WORDS)
    for element_id, model in (("curl-responses", "gpt-5.2"), ("curl-chat", "gpt-5.1-codex-mini")):
        command = _code(page, element_id)
        assert f'"model": "{model}"' in command
        ran = subprocess.run(
            ["bash", "-c", command.replace("YOUR_API_KEY", api_key) + " --silent --show-error --fail"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        assert "".join(WORDS) in ran.stdout
    after = _page(aicy).text
    row = after.split("<code>gpt-5.2</code>")[1].split("</tr>")[0]
    assert re.search(r'<td class="num latency">\d+\.\d s</td>', row), row  # the last 24 hours' median
    sent = [r["body"]["model"] for r in upstream.requests[-3:]]
    assert sent == ["up-general", "up-general", "up-coding"]
