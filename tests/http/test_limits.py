"""Limits on what a request may be, through a real server: nesting depth, body read time, NUL characters,
schemas the embedded engine cannot turn into a grammar; and request ids on CORS preflights.

Every refusal is an OpenAI-shaped 4xx naming its ``param``, and nothing is reserved or charged for it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aicy.http.body import MAX_JSON_DEPTH
from tests.support import MODEL, AicyProcess

READ_TIMEOUT = 1.5
PRICED = {
    "id": MODEL,
    "context_window": 8192,
    "max_output_tokens": 16,
    "default_temperature": 0.2,
    "default_top_p": 0.9,
    "prices": {"input": 1_000_000, "cached_input": 500_000, "output": 2_000_000},
}
FUNDS = 10_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    proc = AicyProcess(
        Path(tmp_path_factory.mktemp("limits")),
        extra_env={
            "AICY_ENGINE_MAX_OUTPUT_TOKENS": "16",
            "AICY_BODY_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def root(server: AicyProcess) -> Iterator[httpx.Client]:
    key = server.cli("keys", "create", "--admin", "--name", "ops").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.root_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        assert c.post("/admin/models", json=PRICED).status_code == 201  # a price, so a charge would show
        yield c


@pytest.fixture(scope="module")
def funded(root: httpx.Client) -> str:
    return _customer(root, "funded")


def _customer(root: httpx.Client, name: str) -> str:
    assert root.post("/admin/accounts", json={"name": name}).status_code == 201
    assert root.post(f"/admin/accounts/{name}/topup", json={"amount": FUNDS}).status_code == 200
    reply = root.post("/admin/keys", json={"account": name, "name": "k"})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["key"])


def _assert_untouched(root: httpx.Client, server: AicyProcess, name: str, key: str) -> None:
    account = root.get(f"/admin/accounts/{name}").json()
    assert (account["balance"], account["reserved"]) == (FUNDS, 0)
    assert root.get("/admin/usage/lines", params={"account": name}).json()["data"] == []
    used = httpx.get(f"{server.base_url}/dashboard/billing/usage", headers={"Authorization": f"Bearer {key}"})
    assert used.status_code == 200 and used.json()["total_usage"] == 0


def _error(reply: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["x-request-id"].startswith("req_")
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["type"] == "invalid_request_error"
    assert error["code"] == code
    return dict(error)


def _nested(levels: int) -> Any:
    value: Any = {"type": "string"}
    for _ in range(levels - 1):
        value = {"type": "array", "items": value}
    return value


def _deep_bodies(levels: int) -> list[tuple[str, dict[str, Any], str]]:
    """(path, body, param): bodies nesting ``levels`` deep in all (the body object is level 1), through one
    field in every kind of place."""
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    responses = {"model": MODEL, "input": "Hi", "max_output_tokens": 16}
    schema = _nested(levels - 3)
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": _nested(levels - 3)}}
    chat_tool = {"type": "function", "function": {"name": "f", "parameters": _nested(levels - 4)}}
    responses_tool = {"type": "function", "name": "f", "parameters": _nested(levels - 3)}
    return [
        ("/chat/completions", {**chat, "response_format": fmt}, "response_format"),
        ("/chat/completions", {**chat, "tools": [chat_tool]}, "tools"),
        ("/chat/completions", {**chat, "vendor_extra": _nested(levels - 1)}, "vendor_extra"),
        (
            "/responses",
            {**responses, "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}}},
            "text",
        ),
        ("/responses", {**responses, "tools": [responses_tool]}, "tools"),
        ("/responses", {**responses, "vendor_extra": _nested(levels - 1)}, "vendor_extra"),
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_too_deep_json_is_refused_at_parse_and_costs_nothing(
    server: AicyProcess, root: httpx.Client, stream: bool
) -> None:
    name = f"deep-{stream}"
    key = _customer(root, name)
    headers = {"Authorization": f"Bearer {key}"}
    for path, body, param in _deep_bodies(MAX_JSON_DEPTH + 1):
        reply = httpx.post(f"{server.base_url}{path}", json={**body, "stream": stream}, headers=headers)
        error = _error(reply, 400, "nesting_too_deep")
        assert error["param"] == param, (path, error)
        assert str(MAX_JSON_DEPTH) in error["message"]
    beyond_orjson = b'{"model": "x", "input": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    reply = httpx.post(f"{server.base_url}/responses", content=beyond_orjson, headers=headers)
    _error(reply, 400, "nesting_too_deep")
    _assert_untouched(root, server, name, key)


def test_nesting_at_the_limit_is_served(server: AicyProcess, root: httpx.Client) -> None:
    key = _customer(root, "at-limit")
    bodies = _deep_bodies(MAX_JSON_DEPTH)
    for path, body, _ in (bodies[2], bodies[5]):  # an unknown field: accepted and ignored
        headers = {"Authorization": f"Bearer {key}"}
        reply = httpx.post(f"{server.base_url}{path}", json=body, headers=headers, timeout=300)
        assert reply.status_code == 200, reply.text


def _raw_exchange(server: AicyProcess, request: bytes, wait: float) -> tuple[bytes, float, bool]:
    """Send ``request``; the bytes received until the server closes (or ``wait`` passes), the time the first
    byte took, and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        started = time.monotonic()
        sock.sendall(request)
        received = b""
        first = None
        closed = False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                first = first or time.monotonic() - started
                received += chunk
        except TimeoutError:
            pass
        return received, first or wait, closed


def _parse_http(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/admin/accounts"])
def test_a_body_shorter_than_its_content_length_times_out_with_408(
    server: AicyProcess, root: httpx.Client, path: str
) -> None:
    key = str(root.headers["authorization"]).split()[1]
    partial = b'{"model": "' + MODEL.encode() + b'", "mess'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(partial) + 100}\r\n\r\n"
    ).encode() + partial
    raw, took, closed = _raw_exchange(server, request, wait=READ_TIMEOUT + 10)
    status, headers, body = _parse_http(raw)
    assert status == 408, raw
    assert READ_TIMEOUT * 0.9 <= took < READ_TIMEOUT + 5
    assert headers["x-request-id"].startswith("req_")
    assert headers.get("connection", "").lower() == "close"
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "request_timeout" and str(READ_TIMEOUT) in error["message"]
    assert closed
    assert server.health()["status"] == "ok"


def test_a_slow_but_complete_body_is_read(server: AicyProcess, root: httpx.Client) -> None:
    key = _customer(root, "slow-sender")

    def trickle() -> Iterator[bytes]:
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
        half = len(body) // 2
        yield body[:half].encode()
        time.sleep(READ_TIMEOUT / 3)
        yield body[half:].encode()

    reply = httpx.post(
        f"{server.base_url}/chat/completions", content=trickle(), headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 200, reply.text


def test_cors_preflight_carries_a_request_id(server: AicyProcess) -> None:
    reply = httpx.options(
        f"{server.base_url}/responses",
        headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"},
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "*"
    assert len(reply.headers.get_list("x-request-id")) == 1
    assert reply.headers["x-request-id"].startswith("req_")
    again = httpx.options(
        f"{server.base_url}/responses",
        headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"},
    )
    assert again.headers["x-request-id"] != reply.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "url", "param"),
    [
        ("GET", "/v1/responses/resp_%00", None),
        ("DELETE", "/v1/responses/resp_%00abc", None),
        ("GET", "/v1/responses/resp_%00/input_items", None),
        ("GET", "/v1/models/a%00b", None),
        ("GET", "/v1/dashboard/billing/usage?start_date=%00", "start_date"),
        ("GET", "/admin/accounts/x%00", None),
        ("GET", "/admin/usage?account=a%00", "account"),
    ],
)
def test_nul_in_the_url_is_a_400(
    server: AicyProcess, root: httpx.Client, method: str, url: str, param: str | None
) -> None:
    reply = root.request(method, url)
    error = _error(reply, 400, "invalid_value")
    assert error["param"] == param
    assert "NUL" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_nul_in_ids_of_the_body_is_a_400(server: AicyProcess, root: httpx.Client, stream: bool) -> None:
    name = f"nul-ids-{stream}"
    key = _customer(root, name)
    headers = {"Authorization": f"Bearer {key}"}
    cases = [
        (
            "/responses",
            {"model": MODEL, "input": "Hi", "previous_response_id": "resp_\u0000"},
            "previous_response_id",
        ),
        ("/responses", {"model": MODEL, "input": "Hi", "prompt_cache_key": "k\u0000"}, "prompt_cache_key"),
        (
            "/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "prompt_cache_key": "\u0000"},
            "prompt_cache_key",
        ),
    ]
    for path, body, param in cases:
        reply = httpx.post(f"{server.base_url}{path}", json={**body, "stream": stream}, headers=headers)
        assert _error(reply, 400, "invalid_value")["param"] == param
    _assert_untouched(root, server, name, key)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer"}, "minItems": 1_000_000_000},
        {"type": "string", "maxLength": 20_000},  # llama.cpp's parser overflowed its stack on this one
        {"const": "a\u0000b"},  # llama.cpp aborted the process when it sampled the NUL
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_schemas_the_engine_cannot_take_are_a_400(
    server: AicyProcess, root: httpx.Client, schema: dict[str, Any], stream: bool
) -> None:
    """Refused before anything is reserved or queued, naming each API's own parameter."""
    name = f"schema-{stream}-{abs(hash(str(schema))) % 10_000}"
    key = _customer(root, name)
    headers = {"Authorization": f"Bearer {key}"}
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        "stream": stream,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    reply = httpx.post(f"{server.base_url}/chat/completions", json=chat, headers=headers, timeout=60)
    assert _error(reply, 400, "invalid_json_schema")["param"] == "response_format"
    responses = {
        "model": MODEL,
        "input": "Hi",
        "stream": stream,
        "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}},
    }
    reply = httpx.post(f"{server.base_url}/responses", json=responses, headers=headers, timeout=60)
    assert _error(reply, 400, "invalid_json_schema")["param"] == "text.format"
    assert server.health()["status"] == "ok"
    _assert_untouched(root, server, name, key)
