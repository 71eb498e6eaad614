"""Codex CLI's own requests (tests/fixtures/codex, captured from codex-cli 0.171.0) replayed through the
official SDK against a real aicy, on four backends:

- ``embedded``: aicy's own model, which runs function tools only;
- ``llama``: a Chat Completions channel that is llama-cpp-python's OpenAI server (``llama_cpp.server``), with
  the augmented replay, not streamed (its server cannot stream a call it chose itself);
- ``chat``: a Chat Completions channel to the scripted Codex upstream, which records what aicy sends it and
  answers with calls to ``exec_command``, ``apply_patch`` (a free-form tool) and ``wait_agent`` (a namespace
  function);
- ``responses``: a Responses channel to the same scripted upstream, which runs hosted tools itself.

On the first three Codex's tools are translated: function tools pass, a namespace is flattened into its
functions, a free-form ``custom`` tool becomes a function with one string argument ``input``, hosted tools
(``web_search``, ``tool_search``, ``image_generation``, ``mcp``, ``local_shell``) are left out and named in
``x-aicy-omitted-tools`` and in the usage log. On the Responses channel every tool reaches the upstream as
Codex sent it and nothing is omitted.

The fixtures' ``model`` is replaced by the id each backend serves. For the two real models, which have an 8192
token window, Codex's long developer messages (about 6 000 tokens) are cut to their first 600 characters and
``max_output_tokens`` is 64; the embedded model has no reasoning efforts, so ``reasoning.effort`` is left out
for it (aicy refuses it for such a model, as OpenAI does).
"""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from aicy.engine.model_file import default_model_path
from tests.fakes.codex_upstream import EXEC_ARGUMENTS, FINAL_TEXT, PATCH, WAIT_ARGUMENTS, CodexUpstream
from tests.support import MODEL, Operator, free_port

FIXTURES = Path(__file__).parents[1] / "fixtures" / "codex"
REPLAYS = ["gpt55_turn1", "gpt55_turn2", "gpt51codex_turn1", "gpt51codex_turn2", "augmented_gpt55_turn2"]
TRANSLATED = frozenset({"function", "namespace", "custom"})
BACKENDS = {
    "embedded": MODEL,
    "llama": "codex-replay-llama",
    "chat": "codex-replay-chat",
    "responses": "codex-replay-responses",
}
REAL_MODELS = ("embedded", "llama")
# A Codex prompt is thousands of tokens of tool schemas and instructions: minutes per request for the small
# models on this shared 2-core machine (llama-cpp-python's function calling runs several grammar-constrained
# passes), so the embedded model gets the one replay that covers every tool type (namespace, custom, hosted
# tools, both kinds of tool output, hosted-call history), streamed and not; llama-cpp-python's server gets it
# not streamed. The scripted channels get every fixture.
SLOW_REPLAYS = ("augmented_gpt55_turn2",)
SLOW = pytest.mark.timeout(900)
CASES = [
    pytest.param(b, n, marks=[SLOW] if b in REAL_MODELS else [])
    for b in BACKENDS
    for n in REPLAYS
    if (b == "embedded" and n in SLOW_REPLAYS) or b not in REAL_MODELS
]
OMITTED_HEADER = "x-aicy-omitted-tools"
DEVELOPER_CHARS = 600
SDK_PARAMS = frozenset(inspect.signature(OpenAI(api_key="x").responses.create).parameters) - {"self"}


def fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return body


def hosted_types(body: dict[str, Any]) -> set[str]:
    """The types of the tools a backend that runs functions only cannot run."""
    return {t["type"] for t in body["tools"] if t["type"] not in TRANSLATED}


def function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in body["tools"] if t["type"] == "function"]


def namespace_functions(body: dict[str, Any]) -> dict[str, str]:
    """Inner function name -> namespace name."""
    return {f["name"]: t["name"] for t in body["tools"] if t["type"] == "namespace" for f in t["tools"]}


def custom_names(body: dict[str, Any]) -> set[str]:
    return {t["name"] for t in body["tools"] if t["type"] == "custom"}


def has_tool_output(body: dict[str, Any]) -> bool:
    return any(i.get("type") in ("function_call_output", "custom_tool_call_output") for i in body["input"])


def for_backend(body: dict[str, Any], backend: str) -> dict[str, Any]:
    """The fixture as replayed on ``backend`` (see the module's docstring)."""
    body = copy.deepcopy(body)
    body["model"] = BACKENDS[backend]
    if backend in REAL_MODELS:
        body["max_output_tokens"] = 64
        for item in body["input"]:
            if item.get("role") == "developer":
                for part in item["content"]:
                    part["text"] = part["text"][:DEVELOPER_CHARS]
    if backend == "embedded" and body.get("reasoning"):
        body["reasoning"].pop("effort", None)
    return body


def sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """``responses.create`` keyword arguments: what the SDK knows by name, the rest in ``extra_body``."""
    known = {k: v for k, v in body.items() if k in SDK_PARAMS}
    extra = {k: v for k, v in body.items() if k not in SDK_PARAMS}
    return {**known, "extra_body": extra} if extra else known


def check_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A well-formed Responses event sequence; the final response."""
    assert events, "no events"
    assert events[0]["type"] == "response.created"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] in ("response.completed", "response.incomplete"), events[-1]
    assert not [e for e in events if e["type"] in ("error", "response.failed")]
    added = {e["output_index"]: e["item"] for e in events if e["type"] == "response.output_item.added"}
    done = {e["output_index"]: e["item"] for e in events if e["type"] == "response.output_item.done"}
    assert sorted(added) == sorted(done) == list(range(len(done)))
    for index, item in done.items():
        assert (added[index]["type"], added[index].get("id")) == (item["type"], item.get("id"))
        deltas = [e for e in events if e.get("output_index") == index and e["type"].endswith(".delta")]
        if item["type"] == "function_call":
            assert "".join(d["delta"] for d in deltas) == item["arguments"]
            finished = [e for e in events if e["type"] == "response.function_call_arguments.done"]
            assert item["arguments"] in [e["arguments"] for e in finished]
        if item["type"] == "custom_tool_call":
            assert {d["type"] for d in deltas} == {"response.custom_tool_call_input.delta"}
            assert "".join(d["delta"] for d in deltas) == item["input"]
            finished = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
            assert [e["input"] for e in finished if e["output_index"] == index] == [item["input"]]
    response: dict[str, Any] = events[-1]["response"]
    assert [(i["type"], i.get("id")) for i in response["output"]] == [
        (done[n]["type"], done[n].get("id")) for n in sorted(done)
    ]
    return response


def check_function_echo(sent: dict[str, Any], response: dict[str, Any]) -> None:
    """Every function tool is echoed in the response with its ``strict`` and ``description``."""
    echoed = {t.get("name"): t for t in response["tools"] if t.get("type") == "function"}
    for tool in function_tools(sent):
        assert tool["name"] in echoed, tool["name"]
        assert echoed[tool["name"]]["strict"] == tool.get("strict")
        assert echoed[tool["name"]]["description"] == tool.get("description")


def omitted(value: str | None) -> set[str]:
    return {name.strip() for name in (value or "").split(",") if name.strip()}


def usage_row(admin: httpx.Client, request_id: str) -> dict[str, Any]:
    lines = admin.get("/admin/usage/lines", params={"limit": 200}).json()["data"]
    rows = [row for row in lines if row["request_id"] == request_id]
    assert len(rows) == 1, f"{len(rows)} usage rows for {request_id}"
    return rows[0]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI server on the embedded model's file, with its whole 8192-token window.

    Its plain ``chatml`` handler: the ``chatml-function-calling`` one refuses to stream an automatic tool
    choice ("Automatic streaming tool choice is not supported"), and aicy streams every translated call (the
    usage comes with the stream). The server still receives and reads the whole translated request."""
    port = free_port()
    log = open(Path(tmp_path_factory.mktemp("llama-codex")) / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path())),
            *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192", "--n_threads", "2"),
            *("--chat_format", "chatml", "--model_alias", "smol-upstream"),
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
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # still busy with a prompt
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[CodexUpstream]:
    server = CodexUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backends(admin: httpx.Client, llama_server: str, upstream: CodexUpstream) -> Iterator[None]:
    operator = Operator(admin)
    efforts = {"reasoning_efforts": ["low", "medium", "high"]}
    for backend in ("llama", "chat", "responses"):
        operator.model(BACKENDS[backend], **efforts)
    operator.channel(
        "codex-llama",
        llama_server,
        {BACKENDS["llama"]: "smol-upstream"},
        wire_api="chat",
        max_tokens_field="max_tokens",
    )
    operator.channel("codex-chat", upstream.base_url, [BACKENDS["chat"]], wire_api="chat")
    operator.channel("codex-responses", upstream.base_url, [BACKENDS["responses"]], wire_api="responses")
    yield
    operator.cleanup()


pytestmark = pytest.mark.usefixtures("backends")


def replay(client: OpenAI, body: dict[str, Any]) -> tuple[httpx.Headers, dict[str, Any]]:
    """Codex's way: streamed. The reply's headers and its final response, the events checked on the way."""
    arguments = sdk_arguments({**body, "stream": True})
    with client.with_options(timeout=600).responses.with_streaming_response.create(**arguments) as raw:
        assert raw.status_code == 200
        events = [event.to_dict() for event in raw.parse()]
        return raw.headers, check_events(events)


@pytest.mark.parametrize(("backend", "name"), CASES)
def test_codex_request_replays(
    client: OpenAI, admin: httpx.Client, upstream: CodexUpstream, backend: str, name: str
) -> None:
    sent = for_backend(fixture(name), backend)
    before = len(upstream.requests)
    headers, response = replay(client, sent)

    relayed = backend == "responses"
    expected = set() if relayed else hosted_types(sent)
    assert omitted(headers.get(OMITTED_HEADER)) == expected
    assert (OMITTED_HEADER in headers) == bool(expected)
    assert omitted(usage_row(admin, headers["x-request-id"]).get("omitted_tools")) == expected
    check_function_echo(sent, response)

    if backend in ("chat", "responses"):
        assert len(upstream.requests) == before + 1
        received = upstream.requests[-1]["body"]
        check_reply(sent, response, relayed)
        if relayed:
            assert received["tools"] == sent["tools"], (
                "hosted and custom tools reach a Responses channel as sent"
            )
        else:
            check_chat_request(sent, received)


def check_reply(sent: dict[str, Any], response: dict[str, Any], relayed: bool) -> None:
    """The scripted upstream's answer as Codex gets it: calls on a first turn, the final message after."""
    output = response["output"]
    assert response["status"] == "completed"
    if has_tool_output(sent):
        assert [i["type"] for i in output] == ["message"]
        assert output[0]["content"][0]["text"] == FINAL_TEXT
        return
    calls = {i["name"]: i for i in output if i["type"] in ("function_call", "custom_tool_call")}
    assert calls["exec_command"]["type"] == "function_call"
    assert json.loads(calls["exec_command"]["arguments"]) == json.loads(EXEC_ARGUMENTS)
    assert "namespace" not in calls["exec_command"]
    if "apply_patch" in custom_names(sent) or relayed:
        patch = calls["apply_patch"]
        assert patch["type"] == "custom_tool_call" and patch["input"] == PATCH and patch["call_id"]
    if relayed:
        reasoning = [i for i in output if i["type"] == "reasoning"]
        assert reasoning and reasoning[0].get("encrypted_content"), "Codex needs the reasoning back"
    elif "wait_agent" in namespace_functions(sent):
        wait = calls["wait_agent"]
        assert (
            wait["type"] == "function_call" and wait["namespace"] == namespace_functions(sent)["wait_agent"]
        )
        assert json.loads(wait["arguments"]) == json.loads(WAIT_ARGUMENTS)


def check_chat_request(sent: dict[str, Any], received: dict[str, Any]) -> None:
    """What a Chat backend is sent for Codex's request: functions only, and the history's tool results."""
    tools = received.get("tools") or []
    assert {t["type"] for t in tools} == {"function"}
    names = [t["function"]["name"] for t in tools]
    expected = (
        [t["name"] for t in function_tools(sent)] + list(namespace_functions(sent)) + list(custom_names(sent))
    )
    assert sorted(names) == sorted(expected), "functions, namespace functions flattened, custom tools"
    by_name = {t["function"]["name"]: t["function"] for t in tools}
    for name in custom_names(sent):
        parameters = by_name[name]["parameters"]
        assert list(parameters["properties"]) == ["input"] and parameters["required"] == ["input"]
        assert parameters["properties"]["input"]["type"] == "string"
    messages = received["messages"]
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    outputs = {
        i["call_id"]: i
        for i in sent["input"]
        if i["type"] in ("function_call_output", "custom_tool_call_output")
    }
    assert set(results) == set(outputs), "tool results pass; hosted calls in the history are dropped"
    for call_id, item in outputs.items():
        assert results[call_id]["content"] == item["output"]
    asked = {
        c["id"]: c["function"]
        for m in messages
        if m["role"] == "assistant"
        for c in m.get("tool_calls") or []
    }
    calls = {i["call_id"]: i for i in sent["input"] if i["type"] in ("function_call", "custom_tool_call")}
    assert set(asked) == set(calls)
    for call_id, item in calls.items():
        assert asked[call_id]["name"] == item["name"]
        if item["type"] == "custom_tool_call":
            assert json.loads(asked[call_id]["arguments"]) == {"input": item["input"]}
        else:
            assert json.loads(asked[call_id]["arguments"]) == json.loads(item["arguments"])


# llama-cpp-python's server is replayed here only (one long prompt is minutes on this machine).
@pytest.mark.parametrize(
    "backend", [pytest.param("embedded", marks=SLOW), pytest.param("llama", marks=SLOW), "chat", "responses"]
)
def test_codex_request_not_streamed(client: OpenAI, admin: httpx.Client, backend: str) -> None:
    """The augmented fixture without streaming: the same omissions, the Response object echoes the tools."""
    sent = for_backend(fixture("augmented_gpt55_turn2"), backend)
    slow = client.with_options(timeout=600)
    raw = slow.responses.with_raw_response.create(**sdk_arguments({**sent, "stream": False}))
    assert raw.status_code == 200
    response = raw.parse().to_dict()
    assert response["status"] in ("completed", "incomplete")
    expected = set() if backend == "responses" else hosted_types(sent)
    assert omitted(raw.headers.get(OMITTED_HEADER)) == expected
    assert omitted(usage_row(admin, raw.headers["x-request-id"]).get("omitted_tools")) == expected
    check_function_echo(sent, response)


def test_function_tool_without_description_echoes_nulls(client: OpenAI) -> None:
    tool = {"type": "function", "name": "ping", "parameters": {"type": "object", "properties": {}}}
    response = client.responses.create(model=MODEL, input="Hi", tools=[tool], max_output_tokens=16)
    echoed = response.to_dict()["tools"][0]
    assert echoed["name"] == "ping" and echoed["description"] is None and "strict" in echoed
