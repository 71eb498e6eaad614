"""Renders a conversation with the chat template stored in the GGUF file's metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _raise(message: str) -> None:
    raise ValueError(message)


class ChatTemplate:
    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        env = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.loopcontrols"],
        )
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self._template = env.from_string(source)
        self._bos = bos_token
        self._eos = eos_token

    def render(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        return self._template.render(
            messages=turns,
            tools=tools,
            add_generation_prompt=True,
            bos_token=self._bos,
            eos_token=self._eos,
        )
