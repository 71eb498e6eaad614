"""Realistic OpenAI reply bodies for the mock upstream: Chat Completions and Responses, whole or streamed.

Shapes follow ``shared/docs/wire.md`` (what the live API sends), with usage filled in, so a gateway does the
same parsing and metering work it would do against OpenAI.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

_WORDS = (
    *("The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "a", "gateway"),
    *("relays", "every", "token", "of", "this", "reply", "to", "a", "patient", "client", "that"),
    *("measures", "how", "long", "each", "piece", "takes", "to", "arrive"),
)


@dataclass(frozen=True, slots=True)
class Reply:
    """What one mock reply says: who asked for which model, and how many tokens each way."""

    model: str
    prompt_tokens: int
    pieces: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)


def make_reply(model: str, request_bytes: int, tokens: int) -> Reply:
    """A reply of ``tokens`` word pieces; the prompt size is estimated at four bytes a token."""
    pieces = tuple((" " if i else "") + _WORDS[i % len(_WORDS)] for i in range(tokens))
    return Reply(model=model, prompt_tokens=max(1, request_bytes // 4), pieces=pieces)


def _chat_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(reply: Reply) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply.text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _chat_usage(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }
    )


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def chat_chunks(reply: Reply, include_usage: bool) -> Iterator[bytes]:
    """The SSE events of a streamed Chat Completion: role, one chunk per token, finish, usage, [DONE]."""
    base = {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice], "usage": None})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in reply.pieces:
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    if include_usage:
        yield _sse({**base, "choices": [], "usage": _chat_usage(reply)})
    yield b"data: [DONE]\n\n"


def _response_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _response_object(reply: Reply, response_id: str, item_id: str, done: bool) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": response_id,
        "object": "response",
        "created_at": now,
        "status": "completed" if done else "in_progress",
        "completed_at": now if done else None,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": reply.model,
        "output": [_message_item(item_id, reply.text, "completed")] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _response_usage(reply) if done else None,
        "user": None,
        "metadata": {},
    }


def response(reply: Reply) -> bytes:
    ids = "resp_" + secrets.token_hex(24), "msg_" + secrets.token_hex(24)
    return orjson.dumps(_response_object(reply, *ids, done=True))


def response_events(reply: Reply) -> Iterator[bytes]:
    """The SSE events of a streamed Response, in the canonical order, with sequence numbers."""
    response_id, item_id = "resp_" + secrets.token_hex(24), "msg_" + secrets.token_hex(24)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response_object(reply, response_id, item_id, False)},
        {"type": "response.in_progress", "response": _response_object(reply, response_id, item_id, False)},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _message_item(item_id, "", "in_progress"),
        },
        {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
    ]
    for seq, event in enumerate(events):
        yield _sse({**event, "sequence_number": seq}, event["type"])
    seq = len(events)
    for piece in reply.pieces:
        yield _sse(
            {
                "type": "response.output_text.delta",
                "sequence_number": seq,
                **where,
                "delta": piece,
                "logprobs": [],
            },
            "response.output_text.delta",
        )
        seq += 1
    closing: list[dict[str, Any]] = [
        {"type": "response.output_text.done", **where, "text": reply.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _message_item(item_id, reply.text, "completed"),
        },
        {"type": "response.completed", "response": _response_object(reply, response_id, item_id, True)},
    ]
    for offset, event in enumerate(closing):
        yield _sse({**event, "sequence_number": seq + offset}, event["type"])
