"""An OpenAI-compatible upstream that never reports usage (as llama.cpp's server does in streams, and some
self-hosted servers always): Chat Completions and Responses, streamed or not, with no ``usage`` anywhere.

Each request takes the next action from ``queue`` (default ``text``):
  text       the reply is TEXT
  tools      the reply is one function call: get_weather with CALL_ARGUMENTS
  reasoning  the reply carries REASONING, then TEXT
  cut        a stream sends the first three words of TEXT, then drops the connection
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.threaded import ThreadedApp

WORDS = ["Hello", " from", " the", " usageless", " upstream", "."]
TEXT = "".join(WORDS)
REASONING = ["First", " I", " think", " about", " greetings", "."]
CALL_NAME = "get_weather"
CALL_ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'


def _sse(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-usageless",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _chat_chunks(model: str, action: str) -> list[dict[str, Any]]:
    chunks = [_chunk(model, {"role": "assistant", "content": ""})]
    if action == "reasoning":
        chunks += [_chunk(model, {"reasoning_content": piece}) for piece in REASONING]
    if action == "tools":
        start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": CALL_NAME}}
        chunks.append(
            _chunk(model, {"tool_calls": [{**start, "function": {"name": CALL_NAME, "arguments": ""}}]})
        )
        half = len(CALL_ARGUMENTS) // 2
        for piece in (CALL_ARGUMENTS[:half], CALL_ARGUMENTS[half:]):
            chunks.append(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        chunks.append(_chunk(model, {}, "tool_calls"))
        return chunks
    chunks += [_chunk(model, {"content": word}) for word in WORDS]
    chunks.append(_chunk(model, {}, "stop"))
    return chunks


async def _chat_stream(model: str, action: str) -> AsyncIterator[bytes]:
    for number, chunk in enumerate(_chat_chunks(model, action)):
        if action == "cut" and number == 4:
            raise ConnectionResetError("injected cut")
        yield _sse(chunk)
        await asyncio.sleep(0.002)
    yield b"data: [DONE]\n\n"


def _chat_body(model: str, action: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": TEXT}
    finish = "stop"
    if action == "reasoning":
        message["reasoning_content"] = "".join(REASONING)
    if action == "tools":
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": CALL_NAME, "arguments": CALL_ARGUMENTS},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    return {
        "id": "chatcmpl-usageless",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def _responses_events(model: str, action: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "id": "resp_usageless",
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": base},
        {"type": "response.in_progress", "response": base},
    ]
    output: list[dict[str, Any]] = []
    if action == "reasoning":
        item: dict[str, Any] = {"id": "rs_1", "type": "reasoning", "summary": []}
        where = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
        events += [
            {"type": "response.reasoning_summary_text.delta", **where, "delta": piece} for piece in REASONING
        ]
        done = {**item, "summary": [{"type": "summary_text", "text": "".join(REASONING)}]}
        events.append({"type": "response.output_item.done", "output_index": 0, "item": done})
        output.append(done)
    index = len(output)
    if action == "tools":
        call: dict[str, Any] = {
            "id": "fc_1",
            "type": "function_call",
            "status": "in_progress",
            "call_id": "call_1",
            "name": CALL_NAME,
            "arguments": "",
        }
        events.append({"type": "response.output_item.added", "output_index": index, "item": call})
        events.append(
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": index,
                "delta": CALL_ARGUMENTS,
            }
        )
        done = {**call, "status": "completed", "arguments": CALL_ARGUMENTS}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    else:
        msg: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"item_id": "msg_1", "output_index": index, "content_index": 0}
        events.append({"type": "response.output_item.added", "output_index": index, "item": msg})
        events.append(
            {
                "type": "response.content_part.added",
                **where,
                "part": {"type": "output_text", "text": "", "annotations": []},
            }
        )
        events += [{"type": "response.output_text.delta", **where, "delta": word} for word in WORDS]
        part = {"type": "output_text", "text": TEXT, "annotations": []}
        events.append({"type": "response.output_text.done", **where, "text": TEXT})
        events.append({"type": "response.content_part.done", **where, "part": part})
        done = {**msg, "status": "completed", "content": [part]}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    events.append(
        {"type": "response.completed", "response": {**base, "status": "completed", "output": output}}
    )
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


async def _responses_stream(model: str, action: str) -> AsyncIterator[bytes]:
    events = _responses_events(model, action)
    for event in events:
        if action == "cut" and event["type"] == "response.output_text.delta" and event["delta"] == WORDS[3]:
            raise ConnectionResetError("injected cut")
        yield _sse(event, event["type"])
        await asyncio.sleep(0.002)


def build_app(state: UsagelessUpstream) -> Starlette:
    async def handle(request: Request) -> Response:
        body = await request.json()
        api = "chat" if request.url.path.endswith("/chat/completions") else "responses"
        state.requests.append({"api": api, "body": body})
        action = state.actions.pop(0) if state.actions else "text"
        model = str(body.get("model"))
        if body.get("stream"):
            stream = _chat_stream(model, action) if api == "chat" else _responses_stream(model, action)
            return StreamingResponse(stream, media_type="text/event-stream")
        if api == "chat":
            return JSONResponse(_chat_body(model, action))
        final = dict(_responses_events(model, action)[-1]["response"])
        del final["usage"]
        return JSONResponse(final)

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "usageless", "object": "model"}]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", handle, methods=["POST"]),
            Route("/v1/responses", handle, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


class UsagelessUpstream(ThreadedApp):
    """The app on a free port, served by uvicorn in a thread of the test process."""

    def __init__(self) -> None:
        self.actions: list[str] = []
        self.requests: list[dict[str, Any]] = []
        super().__init__(build_app(self))

    def queue(self, *actions: str) -> None:
        self.actions = list(actions)
