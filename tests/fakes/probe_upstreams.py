"""Three OpenAI-compatible Chat upstreams that claim to be a GPT-5 model, for the probes:

  faithful        input tokens counted with o200k_base (OpenAI's chat format: 3 per message, its role and
                  content, 3 to prime the reply), reasoning tokens rising with ``reasoning_effort``
  other_tokenizer the same, but every count made with cl100k_base: another model under the claimed name
  ignores_effort  o200k counts, but the same reasoning tokens whatever the effort

Counting here uses quicktok directly (not aicy's counter), so the probe is checked against an independent
implementation of the format. Answers are fixed per prompt; ``max_completion_tokens`` cuts the answer (after
the reasoning tokens) and the reply says ``finish_reason: length``. ``answers`` can be swapped at run time
(the ``drift`` tests change what the upstream says).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import quicktok
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.threaded import ThreadedApp

REASONING = {"minimal": 0, "low": 48, "medium": 192, "high": 768}
IGNORED_EFFORT_REASONING = 160
ANSWERS = {
    "capital": "Paris.",
    "multiplied": "391",
    "haiku": "Waves fold into foam,\nsalt wind carries gull voices,\nthe tide keeps its time.",
    "Juice": "Juice: 64",
    "Count": "\n".join(str(n) for n in range(1, 501)),
}


@dataclass
class ProbeUpstream:
    mode: str  # faithful | other_tokenizer | ignores_effort
    answers: dict[str, str] = field(default_factory=lambda: dict(ANSWERS))
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def encoding(self) -> Any:
        return quicktok.get_encoding("cl100k_base" if self.mode == "other_tokenizer" else "o200k_base")

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        enc = self.encoding
        return 3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages)

    def reasoning_tokens(self, effort: str | None) -> int:
        if effort is None:
            return 0
        return IGNORED_EFFORT_REASONING if self.mode == "ignores_effort" else REASONING[effort]

    def answer(self, messages: list[dict[str, Any]], budget: int | None) -> tuple[list[str], bool]:
        """The answer's tokens as text pieces, and whether it was cut."""
        prompt = messages[-1]["content"]
        text = next((a for k, a in self.answers.items() if k in prompt), "OK.")
        enc = self.encoding
        tokens = enc.encode(text)
        cut = budget is not None and len(tokens) > budget
        kept = tokens[:budget] if cut else tokens
        return [enc.decode([t]) for t in kept], cut

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        effort = body.get("reasoning_effort")
        reasoning = self.reasoning_tokens(effort)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces, cut = self.answer(body["messages"], None if limit is None else max(limit - reasoning, 0))
        usage = {
            "prompt_tokens": self.prompt_tokens(body["messages"]),
            "completion_tokens": len(pieces) + reasoning,
            "total_tokens": 0,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        finish = "length" if cut else "stop"
        model = body["model"]
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(pieces)}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return JSONResponse(
                {
                    "id": "chatcmpl-probe",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        return StreamingResponse(self._stream(model, pieces, finish, usage), media_type="text/event-stream")

    async def _stream(
        self, model: str, pieces: list[str], finish: str, usage: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        def chunk(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
            payload = {
                "id": "chatcmpl-probe",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": choices,
                **(extra or {}),
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for piece in pieces:
            yield chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        yield chunk([{"index": 0, "delta": {}, "finish_reason": finish}])
        yield chunk([], {"usage": usage})
        yield b"data: [DONE]\n\n"

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "gpt-5", "object": "model"}]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
            ]
        )

    def serve(self) -> ThreadedApp:
        return ThreadedApp(self.app()).start()
