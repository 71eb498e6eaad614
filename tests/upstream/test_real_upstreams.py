"""Two real, independent upstreams through the official SDK: llama-cpp-python's own OpenAI server as a Chat
Completions channel, and a second aicy process as a Responses channel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from pydantic import BaseModel

from aicy.engine.model_file import default_model_path
from tests.support import MODEL, AicyProcess, free_port

CHAT_MODEL = "gpt-5.1-codex-mini"  # served by llama_cpp.server (Chat Completions)
RESPONSES_MODEL = "gpt-5.2"  # served by a second aicy (Responses API)
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER},
    }
]
RESPONSES_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": WEATHER,
        "strict": False,
    }
]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = open(Path(tmp_path_factory.mktemp("llama")) / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--n_threads",
            "2",
            "--chat_format",
            "chatml-function-calling",
            "--model_alias",
            "smol-upstream",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("llama_cpp.server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def second_aicy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    server = AicyProcess(
        Path(tmp_path_factory.mktemp("aicy-upstream")), extra_env={"AICY_ENGINE_MAX_OUTPUT_TOKENS": "512"}
    )
    server.start()
    try:
        yield server.base_url, server.new_key("relay")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def channels(admin: httpx.Client, llama_server: str, second_aicy: tuple[str, str]) -> Iterator[None]:
    base, key = second_aicy
    added = [
        {
            "name": "llama-chat",
            "base_url": llama_server,
            "wire_api": "chat",
            "models": {CHAT_MODEL: "smol-upstream"},
            "max_tokens_field": "max_tokens",
            "json_schema_style": "json_object_schema",
        },
        {
            "name": "aicy-responses",
            "base_url": base,
            "wire_api": "responses",
            "api_keys": [key],
            "models": {RESPONSES_MODEL: MODEL},
        },
    ]
    for body in added:
        reply = admin.post("/admin/channels", json=body)
        assert reply.status_code == 201, reply.text
    yield
    for body in added:
        admin.delete(f"/admin/channels/{body['name']}")


pytestmark = pytest.mark.usefixtures("channels")
BOTH = [CHAT_MODEL, RESPONSES_MODEL]


def test_models_list_shows_what_channels_serve(client: OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {CHAT_MODEL, RESPONSES_MODEL, MODEL} <= ids
    assert "gpt-5-codex" not in ids, "a catalog model no channel serves is not listed"
    entry = client.models.retrieve(RESPONSES_MODEL)
    assert entry.model_extra is not None and entry.model_extra["tier"]["zh"] == "旗舰"


@pytest.mark.parametrize("model", BOTH)
def test_text_both_apis(client: OpenAI, model: str) -> None:
    chat = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=30
    )
    assert chat.headers["x-aicy-model"] == model
    assert chat.parse().choices[0].message.content
    resp = client.responses.create(model=model, input="Say hello.", max_output_tokens=30)
    assert resp.output_text and resp.model == model


@pytest.mark.parametrize("model", BOTH)
def test_streaming_both_apis(client: OpenAI, model: str) -> None:
    with client.chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "Say hi."}], max_tokens=400, temperature=0
    ) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[0].message.content
    with client.responses.stream(
        model=model, input="Say hi.", max_output_tokens=400, temperature=0
    ) as rstream:
        kinds = [e.type for e in rstream]
        final = rstream.get_final_response()
    assert kinds[0] == "response.created" and final.output_text


class Pet(BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("model", BOTH)
def test_structured_output_both_apis(client: OpenAI, model: str) -> None:
    parsed = client.responses.parse(
        model=model, input="Invent a pet as JSON.", text_format=Pet, max_output_tokens=200, temperature=0
    )
    assert isinstance(parsed.output_parsed, Pet)
    chat = client.chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "A pet as JSON."}],
        response_format=Pet,
        max_tokens=200,
        temperature=0,
    )
    assert isinstance(chat.choices[0].message.parsed, Pet)


@pytest.mark.parametrize("model", BOTH)
def test_multi_turn_tool_conversation_over_responses(client: OpenAI, model: str) -> None:
    first = client.responses.create(
        model=model,
        input="What is the weather in Paris?",
        tools=RESPONSES_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=100,
    )
    calls = [o for o in first.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments)
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=RESPONSES_TOOLS,
        max_output_tokens=60,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"}],
    )
    assert second.output_text
    third = client.responses.create(
        model=model, previous_response_id=second.id, input="Thanks!", max_output_tokens=40
    )
    assert third.status in ("completed", "incomplete")
    assert client.responses.retrieve(third.id).previous_response_id == second.id


@pytest.mark.parametrize("model", BOTH)
def test_multi_turn_tool_conversation_over_chat(client: OpenAI, model: str) -> None:
    messages: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(
        model=model,
        messages=messages,
        tools=CHAT_TOOLS,
        max_tokens=100,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    # content "" rather than null: llama-cpp-python's server refuses null (its limitation; aicy relays as is)
    assistant = {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]}
    messages += [assistant, {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=CHAT_TOOLS, max_tokens=60)
    assert second.choices[0].message.content


def test_streamed_tool_call_over_chat_upstream(client: OpenAI) -> None:
    with client.responses.stream(
        model=CHAT_MODEL,
        input="Weather in Rome?",
        tools=RESPONSES_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=100,
    ) as stream:
        final = stream.get_final_response()
    call = next(o for o in final.output if o.type == "function_call")
    assert "city" in json.loads(call.arguments)


def test_reasoning_effort_over_both(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], reasoning_effort="high", max_tokens=20
    )
    assert reply.choices[0].message.content is not None
    resp = client.responses.create(
        model=CHAT_MODEL, input="hi", reasoning={"effort": "medium"}, max_output_tokens=20
    )
    assert resp.reasoning is not None and resp.reasoning.effort == "medium"
