"""A small OpenAI-compatible upstream that misbehaves on command, and records what it was sent.

Each request takes the next action from the queue set by ``POST /control`` (default ``ok``):
  ok       a normal reply (streamed or not) in the API asked for, with usage
  tools    the reply is two parallel function calls (get_weather for Paris and Tokyo)
  codex-tools  (Chat) two calls as a backend offered Codex's tools makes them: ``apply_patch`` (a custom
           tool, offered as a function taking ``input``) with ``PATCH``, then ``spawn_agent`` (a namespaced
           function), arguments streamed in 7-character fragments
  reasoning  the reply carries reasoning text, then the answer
  429 / 500 / 401 / 403   that status with an OpenAI error body (429 with retry-after: 0)
  400      a context_length_exceeded error (the customer's own problem: no failover)
  stall    wait ``stall`` seconds before answering
  307      redirect elsewhere (aicy does not follow: a misconfigured base URL)
  cut      stream a few chunks, then drop the connection
  slow-end a normal stream whose body ends 50 ms after ``[DONE]`` (as a distant upstream's last packet may)
Actions that echo the request's headers (``authorization`` included) and ``echo_text`` (set by
``/control``), as careless proxies and self-hosted servers do, in the message, ``param`` and ``code`` of
an error, and in an ``x-echo-authorization`` response header:
  echo-400     a 400 error reply
  echo-500     a 500 error reply
  echo-stream  a stream that starts, then reports the error in-band (a Chat ``error`` chunk, a Responses
               ``error`` event); not streamed: a 200 whose body is the error (Chat) or a failed response
  echo-failed  like echo-stream, but a Responses stream ends with ``response.failed`` carrying the error
Each recorded request carries ``peer``, the client's port: the same port means a reused connection.
A request that asks for log-probabilities (Chat ``logprobs: true``, Responses ``include`` of
``message.output_text.logprobs``) gets made-up ones for each word of a normal reply (see ``word_logprob``),
with as many alternatives as its ``top_logprobs`` (at most two).
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

WORDS = ["Hello", " from", " the", " fault", " upstream", "."]
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 6,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
REASONING = ["Let", " me", " think", "."]
CALLS = [("call_a", "get_weather", '{"city": "Paris"}'), ("call_b", "get_weather", '{"city": "Tokyo"}')]
PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello, "world" \\ 世界\n*** End Patch'
CODEX_CALLS = [
    ("call_patch", "apply_patch", json.dumps({"input": PATCH}, ensure_ascii=False)),
    ("call_spawn", "spawn_agent", '{"message": "hi"}'),
]
LOGPROBS_INCLUDE = "message.output_text.logprobs"


def _fragments(text: str, action: str) -> list[str]:
    if action == "codex-tools":
        return [text[i : i + 7] for i in range(0, len(text), 7)]
    half = len(text) // 2
    return [text[:half], text[half:]]


def word_logprob(number: int, top: int, with_bytes: bool = True) -> dict[str, Any]:
    """The made-up entry of ``WORDS[number]``: log-probability -(number+1)/10; alternatives the word
    itself and "?" at -9."""
    word, logprob = WORDS[number], -(number + 1) / 10
    alternatives = [(word, logprob), ("?", -9.0)][:top]
    entry: dict[str, Any] = {"token": word, "logprob": logprob}
    if with_bytes:
        entry["bytes"] = list(word.encode())
    entry["top_logprobs"] = [
        {"token": t, "logprob": v, **({"bytes": list(t.encode())} if with_bytes else {})}
        for t, v in alternatives
    ]
    return entry


def asked_logprobs(api: str, body: dict[str, Any]) -> int | None:
    """None when the request did not ask for log-probabilities, else how many alternatives."""
    asked = body.get("logprobs") is True if api == "chat" else LOGPROBS_INCLUDE in (body.get("include") or [])
    return int(body.get("top_logprobs") or 0) if asked else None


class FaultState:
    def __init__(self, name: str) -> None:
        self.name = name
        self.actions: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.stall = 5.0
        self.delay = 0.0  # every reply waits this long first (a slow but healthy upstream)
        self.chunk_gap = 0.01  # pause between streamed chat chunks
        self.echo_text = ""  # added to what the echo-* actions echo

    def next_action(self) -> str:
        return self.actions.pop(0) if self.actions else "ok"


def _error(status: int, code: str) -> Response:
    headers = {"retry-after": "0"} if status == 429 else {}
    body = {"error": {"message": f"injected {status}", "type": "server_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _echo(state: FaultState, headers: dict[str, str]) -> dict[str, Any]:
    """An error object that gives away the request's credentials, every way a careless server might."""
    auth = headers.get("authorization", "")
    key = auth.removeprefix("Bearer ")
    return {
        "message": f"Invalid request. We received headers {json.dumps(headers)}; Authorization: {auth}; "
        f"key {key} {state.echo_text}",
        "type": "invalid_request_error",
        "param": f"{key} {state.echo_text}",
        "code": f"bad_key:{key}",
    }


def _echo_reply(state: FaultState, headers: dict[str, str], status: int) -> Response:
    auth = headers.get("authorization", "")
    return JSONResponse(
        {"error": _echo(state, headers)}, status_code=status, headers={"x-echo-authorization": auth}
    )


async def _echo_chat_stream(model: str, error: dict[str, Any]) -> AsyncIterator[bytes]:
    yield _chunk(model, {"role": "assistant", "content": ""})
    yield _chunk(model, {"content": "Hello"})
    yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"


async def _echo_responses_stream(model: str, action: str, error: dict[str, Any]) -> AsyncIterator[bytes]:
    events = _responses_events(model, "ok")[:7]  # created, in_progress, item and part added, 3 deltas
    if action == "echo-failed":
        response = {**events[0]["response"], "status": "failed", "error": error}
        events.append({"type": "response.failed", "response": response})
    else:
        events.append({**error, "type": "error"})
    for number, event in enumerate(events):
        event["sequence_number"] = number
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _chunk(
    model: str, delta: dict[str, Any], finish: str | None = None, logprobs: dict[str, Any] | None = None
) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    body = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [choice],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _chat_stream(
    model: str, action: str, gap: float = 0.01, top: int | None = None
) -> AsyncIterator[bytes]:
    yield _chunk(model, {"role": "assistant", "content": ""})
    if action == "reasoning":
        for piece in REASONING:
            yield _chunk(model, {"reasoning_content": piece})
    if action in ("tools", "codex-tools"):
        calls = CALLS if action == "tools" else CODEX_CALLS
        for index, (call_id, name, _) in enumerate(calls):
            yield _chunk(
                model,
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                },
            )
        for index, (_, _, args) in enumerate(calls):
            for piece in _fragments(args, action):
                yield _chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield _chunk(model, {}, "tool_calls")
    else:
        for number, word in enumerate(WORDS):
            if action == "cut" and number == 3:
                raise ConnectionResetError("injected cut")
            scores = None if top is None else {"content": [word_logprob(number, top)], "refusal": None}
            yield _chunk(model, {"content": word}, logprobs=scores)
            await asyncio.sleep(gap)
        yield _chunk(model, {}, "stop")
    usage = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [],
        "usage": USAGE,
    }
    yield b"data: " + json.dumps(usage).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"
    if action == "slow-end":
        await asyncio.sleep(0.05)


def _chat_body(model: str, action: str, top: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(WORDS)}
    logprobs = None
    if top is not None:
        logprobs = {"content": [word_logprob(n, top) for n in range(len(WORDS))], "refusal": None}
    finish = "stop"
    if action == "reasoning":
        message["reasoning_content"] = "".join(REASONING)
    if action in ("tools", "codex-tools"):
        calls = CALLS if action == "tools" else CODEX_CALLS
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c, "type": "function", "function": {"name": n, "arguments": a}} for c, n, a in calls
            ],
        }
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish,
                **({"logprobs": logprobs} if logprobs else {}),
            }
        ],
        "usage": USAGE,
    }


def _responses_events(model: str, action: str, top: int | None = None) -> list[dict[str, Any]]:
    usage = {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 3 if action == "reasoning" else 0},
        "total_tokens": 18,
    }
    base = {
        "id": "resp_fault1",
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
        item = {"id": "rs_1", "type": "reasoning", "summary": []}
        text = "".join(REASONING)
        events += [
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {
                "type": "response.reasoning_summary_part.added",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": ""},
            },
        ]
        events += [
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "delta": piece,
            }
            for piece in REASONING
        ]
        done = {**item, "summary": [{"type": "summary_text", "text": text}]}
        events += [
            {
                "type": "response.reasoning_summary_text.done",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "text": text,
            },
            {"type": "response.output_item.done", "output_index": 0, "item": done},
        ]
        output.append(done)
    index = len(output)
    msg = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    events += [
        {"type": "response.output_item.added", "output_index": index, "item": msg},
        {
            "type": "response.content_part.added",
            "item_id": "msg_1",
            "output_index": index,
            "content_index": 0,
            "part": part,
        },
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": index,
            "content_index": 0,
            "delta": w,
            **({} if top is None else {"logprobs": [word_logprob(number, top, with_bytes=False)]}),
        }
        for number, w in enumerate(WORDS)
    ]
    full = {"type": "output_text", "text": "".join(WORDS), "annotations": []}
    if top is not None:
        full["logprobs"] = [word_logprob(n, top) for n in range(len(WORDS))]
    done_msg = {**msg, "status": "completed", "content": [full]}
    events += [
        {
            "type": "response.output_text.done",
            "item_id": "msg_1",
            "output_index": index,
            "content_index": 0,
            "text": full["text"],
        },
        {
            "type": "response.content_part.done",
            "item_id": "msg_1",
            "output_index": index,
            "content_index": 0,
            "part": full,
        },
        {"type": "response.output_item.done", "output_index": index, "item": done_msg},
    ]
    output.append(done_msg)
    events.append(
        {
            "type": "response.completed",
            "response": {**base, "status": "completed", "output": output, "usage": usage},
        }
    )
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


async def _responses_stream(model: str, action: str, top: int | None = None) -> AsyncIterator[bytes]:
    for number, event in enumerate(_responses_events(model, action, top)):
        if action == "cut" and number == 6:
            raise ConnectionResetError("injected cut")
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        await asyncio.sleep(0.005)


def build_app(state: FaultState) -> Starlette:
    async def handle(request: Request) -> Response:
        body = await request.json()
        api = "chat" if request.url.path.endswith("/chat/completions") else "responses"
        peer = request.client.port if request.client else None
        state.requests.append({"api": api, "body": body, "headers": dict(request.headers), "peer": peer})
        action = state.next_action()
        headers = dict(request.headers)
        if action in ("echo-400", "echo-500"):
            return _echo_reply(state, headers, int(action[-3:]))
        if action in ("echo-stream", "echo-failed"):
            model, error = str(body.get("model")), _echo(state, headers)
            echoed = {"x-echo-authorization": headers.get("authorization", "")}
            if body.get("stream"):
                stream = (
                    _echo_chat_stream(model, error)
                    if api == "chat"
                    else _echo_responses_stream(model, action, error)
                )
                return StreamingResponse(stream, media_type="text/event-stream", headers=echoed)
            if api == "chat":
                return JSONResponse({"error": error}, headers=echoed)
            failed = {**_responses_events(model, "ok")[-1]["response"], "status": "failed", "error": error}
            return JSONResponse(failed, headers=echoed)
        if action in ("429", "500", "401", "403"):
            return _error(int(action), "injected")
        if action == "307":
            return Response(
                status_code=307, headers={"location": "https://elsewhere.example/v1/chat/completions"}
            )
        if action == "400":
            return JSONResponse(
                {
                    "error": {
                        "message": "Your input exceeds the context window of this model.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
                status_code=400,
            )
        if action == "stall":
            await asyncio.sleep(state.stall)
        if state.delay:
            await asyncio.sleep(state.delay)
        model = str(body.get("model"))
        top = asked_logprobs(api, body)
        if body.get("stream"):
            stream = (
                _chat_stream(model, action, state.chunk_gap, top)
                if api == "chat"
                else _responses_stream(model, action, top)
            )
            return StreamingResponse(stream, media_type="text/event-stream")
        if api == "chat":
            return JSONResponse(_chat_body(model, action, top))
        return JSONResponse(_responses_events(model, action, top)[-1]["response"])

    async def control(request: Request) -> Response:
        command = await request.json()
        state.actions = list(command.get("actions", []))
        state.stall = float(command.get("stall", state.stall))
        state.delay = float(command.get("delay", state.delay))
        state.echo_text = str(command.get("echo_text", state.echo_text))
        if command.get("reset_requests"):
            state.requests.clear()
        return JSONResponse({"ok": True})

    async def models(request: Request) -> Response:
        if state.actions and state.actions[0] in ("401", "403"):
            return _error(int(state.actions[0]), "injected")
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": "fault", "object": "model", "created": 1, "owned_by": state.name}],
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", handle, methods=["POST"]),
            Route("/v1/responses", handle, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/control", control, methods=["POST"]),
        ]
    )


class FaultUpstream(ThreadedApp):
    """The app on a free port, served by uvicorn in a thread of the test process."""

    def __init__(self, name: str = "fault") -> None:
        self.state = FaultState(name)
        super().__init__(build_app(self.state))

    def queue(self, *actions: str) -> None:
        self.state.actions = list(actions)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests
