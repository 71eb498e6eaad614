"""A deterministic upstream for Codex CLI runs (tests/test_codex_cli.py) and Codex replays: it plays the
model's part of one coding-agent task, in Chat Completions and in the Responses API, and records what it was
sent.

Chat Completions: when the last message is a tool result, the reply is FINAL_TEXT; otherwise it is a call to
``exec_command`` with EXEC_ARGUMENTS, plus a call to ``apply_patch`` with ``{"input": PATCH}`` when a tool of
that name is offered (aicy offers Codex's free-form ``custom`` tools to a Chat backend as a function with one
string argument ``input``), plus a call to ``wait_agent`` with WAIT_ARGUMENTS when that is offered (a function
of Codex's ``multi_agent_v1`` namespace, flattened by aicy).

Responses API: when the input holds a tool output, the reply is a message with FINAL_TEXT; otherwise a
reasoning item with ``encrypted_content``, a ``function_call`` to ``exec_command`` and a ``custom_tool_call``
to ``apply_patch`` (what a Responses backend that runs Codex's tools itself answers).

Both stream or not as asked, with usage; a Responses reply echoes the request's ``tools`` as OpenAI does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.threaded import ThreadedApp

FINAL_TEXT = "The command printed aicy-codex-ok; all done."
EXEC_ARGUMENTS = json.dumps({"cmd": "echo aicy-codex-ok"})
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from aicy\n*** End Patch\n"
WAIT_ARGUMENTS = json.dumps({"targets": ["agent-1"], "timeout_ms": 1000})
ENCRYPTED = "gAAAAB-fake-opaque-reasoning"
CHAT_USAGE = {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
RESPONSES_USAGE = {
    "input_tokens": 30,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 37,
}
OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


def _sse(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def offered_names(body: dict[str, Any]) -> set[str]:
    """Names of the function tools a Chat request offers."""
    return {t["function"]["name"] for t in body.get("tools") or [] if t.get("type") == "function"}


def chat_calls(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(call id, name, arguments) the Chat reply to ``body`` makes; empty for the final answer."""
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return []
    calls = [("call_exec", "exec_command", EXEC_ARGUMENTS)]
    if "apply_patch" in offered_names(body):
        calls.append(("call_patch", "apply_patch", json.dumps({"input": PATCH})))
    if "wait_agent" in offered_names(body):
        calls.append(("call_wait", "wait_agent", WAIT_ARGUMENTS))
    return calls


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-codex",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _chat_chunks(model: str, calls: list[tuple[str, str, str]]) -> Iterator[dict[str, Any]]:
    yield _chunk(model, {"role": "assistant", "content": ""})
    if not calls:
        first, *rest = FINAL_TEXT.split(" ")
        for piece in [first, *(" " + word for word in rest)]:
            yield _chunk(model, {"content": piece})
        yield _chunk(model, {}, "stop")
    for index, (call_id, name, arguments) in enumerate(calls):
        start = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        yield _chunk(model, {"tool_calls": [start]})
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            yield _chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    if calls:
        yield _chunk(model, {}, "tool_calls")
    yield {**_chunk(model, {}), "choices": [], "usage": CHAT_USAGE}


async def _chat_stream(model: str, calls: list[tuple[str, str, str]]) -> AsyncIterator[bytes]:
    for chunk in _chat_chunks(model, calls):
        yield _sse(chunk)
    yield b"data: [DONE]\n\n"


def _chat_body(model: str, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": FINAL_TEXT}
    if calls:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c, "type": "function", "function": {"name": n, "arguments": a}} for c, n, a in calls
            ],
        }
    return {
        "id": "chatcmpl-codex",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": CHAT_USAGE,
    }


def responses_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The output items the Responses reply to ``body`` carries."""
    items = body.get("input")
    done = isinstance(items, list) and any(i.get("type") in OUTPUT_TYPES for i in items)
    if done:
        text = {"type": "output_text", "text": FINAL_TEXT, "annotations": []}
        return [
            {
                "id": "msg_fake1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [text],
            }
        ]
    return [
        {
            "id": "rs_fake1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Run it, then patch."}],
            "encrypted_content": ENCRYPTED,
        },
        {
            "id": "fc_fake1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_exec",
            "name": "exec_command",
            "arguments": EXEC_ARGUMENTS,
        },
        {
            "id": "ctc_fake1",
            "type": "custom_tool_call",
            "status": "completed",
            "call_id": "call_patch",
            "name": "apply_patch",
            "input": PATCH,
        },
    ]


def _response(
    model: str, status: str, output: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": "resp_fakecodex",
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": status,
        "output": output,
        "usage": RESPONSES_USAGE if status == "completed" else None,
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def _item_events(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = item["type"]
    started = dict(item)
    if kind == "function_call":
        started["arguments"] = ""
    elif kind == "custom_tool_call":
        started["input"] = ""
    elif kind == "message":
        started["content"] = []
    yield {"type": "response.output_item.added", "output_index": index, "item": started}
    where = {"item_id": item["id"], "output_index": index}
    if kind == "function_call":
        yield {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]}
        yield {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]}
    elif kind == "custom_tool_call":
        yield {"type": "response.custom_tool_call_input.delta", **where, "delta": item["input"]}
        yield {"type": "response.custom_tool_call_input.done", **where, "input": item["input"]}
    elif kind == "message":
        part = item["content"][0]
        yield {
            "type": "response.content_part.added",
            **where,
            "content_index": 0,
            "part": {**part, "text": ""},
        }
        yield {"type": "response.output_text.delta", **where, "content_index": 0, "delta": part["text"]}
        yield {"type": "response.output_text.done", **where, "content_index": 0, "text": part["text"]}
        yield {"type": "response.content_part.done", **where, "content_index": 0, "part": part}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def responses_events(
    model: str, items: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    started = _response(model, "in_progress", [], tools)
    events = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    for index, item in enumerate(items):
        events += _item_events(index, item)
    events.append({"type": "response.completed", "response": _response(model, "completed", items, tools)})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


async def _responses_stream(
    model: str, items: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> AsyncIterator[bytes]:
    for event in responses_events(model, items, tools):
        yield _sse(event, event["type"])


def build_app(requests: list[dict[str, Any]]) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        requests.append({"api": "chat", "body": body, "headers": dict(request.headers)})
        model, calls = str(body.get("model")), chat_calls(body)
        if body.get("stream"):
            return StreamingResponse(_chat_stream(model, calls), media_type="text/event-stream")
        return JSONResponse(_chat_body(model, calls))

    async def responses(request: Request) -> Response:
        body = await request.json()
        requests.append({"api": "responses", "body": body, "headers": dict(request.headers)})
        model, items, tools = str(body.get("model")), responses_items(body), body.get("tools") or []
        if body.get("stream"):
            return StreamingResponse(_responses_stream(model, items, tools), media_type="text/event-stream")
        return JSONResponse(_response(model, "completed", items, tools))

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "codex", "object": "model", "created": 1}]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


class CodexUpstream(ThreadedApp):
    """The scripted upstream on a free port, in a thread of the test process."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        super().__init__(build_app(self.requests))
