"""The catalog the customer guide sells: nine GPT models, with OpenAI's public list prices as defaults.

Operators change, add and remove models (``aicy models …`` and ``/admin/models``); this module only seeds
an empty database. Reasoning efforts follow ../shared/docs/wire.md §5.
"""

from __future__ import annotations

from typing import Any

from aicy.domain.models import ModelInfo, Prices

_CONTEXT = 400_000
_OUTPUT = 128_000
_STANDARD = Prices(input=1_250_000, cached_input=125_000, output=10_000_000)
_FLAGSHIP = Prices(input=1_750_000, cached_input=175_000, output=14_000_000)
_MINI = Prices(input=250_000, cached_input=25_000, output=2_000_000)

_GENERAL = {"en": "general", "zh": "通用"}
_CODING = {"en": "coding", "zh": "编程"}
_TIERS = {
    "mini": {"en": "mini", "zh": "mini"},
    "standard": {"en": "standard", "zh": "标准"},
    "max": {"en": "max", "zh": "max"},
    "flagship": {"en": "flagship", "zh": "旗舰"},
}


def _details(
    series: dict[str, str], tier: str, uses: tuple[str, str], note: tuple[str, str]
) -> dict[str, Any]:
    return {
        "series": series,
        "tier": _TIERS[tier],
        "uses": {"en": uses[0], "zh": uses[1]},
        "note": {"en": note[0], "zh": note[1]},
    }


def _model(
    model_id: str, efforts: tuple[str, ...], default: str, prices: Prices, details: dict[str, Any]
) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        context_window=_CONTEXT,
        max_output_tokens=_OUTPUT,
        owned_by="openai",
        reasoning_efforts=efforts,
        default_reasoning_effort=default,
        prices=prices,
        details=details,
    )


DEFAULT_MODELS: tuple[ModelInfo, ...] = (
    _model(
        "gpt-5",
        ("minimal", "low", "medium", "high"),
        "medium",
        _STANDARD,
        _details(
            _GENERAL,
            "standard",
            ("Chat, summaries, writing, Q&A", "对话、总结、写作、问答"),
            ("General-purpose base model", "通用基础款"),
        ),
    ),
    _model(
        "gpt-5.1",
        ("none", "low", "medium", "high"),
        "none",
        _STANDARD,
        _details(
            _GENERAL,
            "standard",
            ("Steadier everyday tasks, batch content generation", "更稳健的日常任务、批量内容生成"),
            ("General-purpose upgrade", "通用升级"),
        ),
    ),
    _model(
        "gpt-5.2",
        ("none", "low", "medium", "high", "xhigh"),
        "none",
        _FLAGSHIP,
        _details(
            _GENERAL,
            "flagship",
            ("Complex analysis, long documents, enterprise workflows", "复杂分析、长文任务、企业工作流"),
            ("Strongest general model", "通用最强版本"),
        ),
    ),
    _model(
        "gpt-5-codex-mini",
        ("medium", "high"),
        "medium",
        _MINI,
        _details(
            _CODING,
            "mini",
            ("IDE completion, small edits, quick fixes", "IDE 补全、小改动、快速修复"),
            ("Low latency / high concurrency", "低延迟 / 高并发"),
        ),
    ),
    _model(
        "gpt-5-codex",
        ("low", "medium", "high"),
        "medium",
        _STANDARD,
        _details(
            _CODING,
            "standard",
            ("Code generation, fixes, refactoring, explanation", "代码生成、修复、重构、解释"),
            ("General coding", "编程通用"),
        ),
    ),
    _model(
        "gpt-5.1-codex-mini",
        ("medium", "high"),
        "medium",
        _MINI,
        _details(
            _CODING,
            "mini",
            ("Steadier light coding, batches of small tasks", "更稳的轻量编码、批量小任务"),
            ("Low latency / high concurrency", "低延迟 / 高并发"),
        ),
    ),
    _model(
        "gpt-5.1-codex",
        ("low", "medium", "high"),
        "medium",
        _STANDARD,
        _details(
            _CODING,
            "standard",
            ("Harder engineering tasks, test generation, code review", "更复杂工程任务、测试生成、代码评审"),
            ("Coding upgrade", "编程升级"),
        ),
    ),
    _model(
        "gpt-5.1-codex-max",
        ("low", "medium", "high", "xhigh"),
        "medium",
        _STANDARD,
        _details(
            _CODING,
            "max",
            (
                "Cross-file changes in large repos, hard debugging, migrations",
                "大仓库跨文件改造、复杂调试、迁移重构",
            ),
            ("First choice for complex engineering", "复杂工程首选"),
        ),
    ),
    _model(
        "gpt-5.2-codex",
        ("low", "medium", "high", "xhigh"),
        "medium",
        _FLAGSHIP,
        _details(
            _CODING,
            "flagship",
            (
                "End-to-end delivery, complex refactoring, toolchain work",
                "端到端工程交付、复杂重构、工具链联动",
            ),
            ("Strongest coding model", "编程最强版本"),
        ),
    ),
)
