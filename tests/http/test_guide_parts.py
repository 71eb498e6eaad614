"""The guide's pieces without a server: language choice, prices and limits, advice from the catalog."""

from __future__ import annotations

import pytest

from aicy.domain.models import ModelInfo, Prices
from aicy.http.web.guide import choose_lines, examples, highest_effort, money, tokens
from aicy.http.web.language import from_accept_language
from aicy.routing.default_models import DEFAULT_MODELS


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("en", "en"),
        ("en-GB,en;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr;q=1, en;q=0.2, zh;q=0.3", "zh"),
        ("en;q=0.5, zh;q=0.5", "en"),  # a tie: the first listed
        ("en;q=0", None),
        ("en;q=nonsense", None),
        ("de, ja", None),
        ("ZH_tw", "zh"),
        ("," * 10_000 + "en", None),  # only the first 32 entries are read
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert from_accept_language(header) == expected


@pytest.mark.parametrize(
    ("micro", "shown"),
    [(0, "$0.00"), (125_000, "$0.125"), (1_250_000, "$1.25"), (14_000_000, "$14.00"), (1, "$0.000001")],
)
def test_money(micro: int, shown: str) -> None:
    assert money(micro) == shown


@pytest.mark.parametrize(
    ("count", "shown"), [(400_000, "400K"), (128_000, "128K"), (8192, "8K"), (777, "777")]
)
def test_tokens(count: int, shown: str) -> None:
    assert tokens(count) == shown


def test_advice_follows_the_catalog() -> None:
    general, coding = choose_lines(list(DEFAULT_MODELS), "zh")
    assert general == ["通用任务(文案 / 问答 / 总结 / 轻量分析):优先 gpt-5.2;成本敏感可用 gpt-5.1 或 gpt-5。"]
    assert "轻量、低延迟:gpt-5.1-codex-mini / gpt-5-codex-mini" in coding
    assert "大仓库、复杂重构:gpt-5.1-codex-max" in coding
    assert "追求更强编码能力:gpt-5.2-codex" in coding
    assert choose_lines([], "en") == ([], [])
    assert highest_effort(list(DEFAULT_MODELS)) == "xhigh"


def test_examples_quote_whatever_the_catalog_holds() -> None:
    odd = 'it\'s "odd" \\ id'
    model = ModelInfo(id=odd, context_window=1000, max_output_tokens=100, prices=Prices(1, 1, 1))
    built = examples("https://x.example/v1/", model.id, model.id, "en")
    assert "https://x.example/v1/responses" in built["curl_responses"]
    assert '"it\'\\\'\'s \\"odd\\" \\\\ id"' in built["curl_responses"]  # JSON, then shell-quoted
    assert 'model="it\'s \\"odd\\" \\\\ id"' in built["python"]


def test_both_languages_have_every_text() -> None:
    from aicy.http.web.messages import CONSOLE, TEXT

    for texts in (TEXT, CONSOLE):
        assert set(texts["zh"]) == set(texts["en"])
        assert all(value.strip() for table in texts.values() for value in table.values())
