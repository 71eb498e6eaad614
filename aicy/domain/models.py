"""What a model is: its limits, reasoning efforts, default sampling, prices and catalog metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"


@dataclass(frozen=True, slots=True)
class Prices:
    """Micro-units of the account currency (1e-6 USD by default) per million tokens."""

    input: int
    cached_input: int
    output: int

    def to_json(self) -> dict[str, int]:
        return {"input": self.input, "cached_input": self.cached_input, "output": self.output}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    context_window: int
    max_output_tokens: int
    owned_by: str = "aicy"
    created: int = 1_730_000_000
    reasoning_efforts: tuple[str, ...] = ()
    default_reasoning_effort: str | None = None
    default_temperature: float = 1.0
    default_top_p: float = 1.0
    prices: Prices = field(default_factory=lambda: Prices(0, 0, 0))
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def supports_reasoning(self) -> bool:
        return bool(self.reasoning_efforts)

    def to_json(self) -> dict[str, Any]:
        """The ``/v1/models`` entry; extra keys carry catalog metadata, which SDKs ignore."""
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owned_by,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "reasoning_efforts": list(self.reasoning_efforts),
            "default_reasoning_effort": self.default_reasoning_effort,
            "pricing": {"unit": "micro-USD per 1M tokens", **self.prices.to_json()},
            **self.details,
        }


def embedded_model(context_window: int, max_output_tokens: int) -> ModelInfo:
    return ModelInfo(
        id=EMBEDDED_MODEL_ID,
        context_window=context_window,
        max_output_tokens=min(max_output_tokens, context_window),
        owned_by="aicy",
        default_temperature=0.2,
        default_top_p=0.9,
        details={
            "series": {"en": "embedded", "zh": "内置"},
            "tier": {"en": "mini", "zh": "mini"},
            "uses": {"en": "Smoke tests and offline demos", "zh": "联调测试、离线演示"},
            "note": {
                "en": "SmolLM2-135M-Instruct run locally by llama.cpp",
                "zh": "本地 llama.cpp 运行的 SmolLM2-135M",
            },
        },
    )
