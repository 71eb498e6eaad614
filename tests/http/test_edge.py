"""The HTTP edge seen raw: auth, error bodies, limits, CORS, request ids, SSE framing."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import TEST_MAX_BODY
from tests.support import MODEL, AicyProcess

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_error_shape(reply: httpx.Response, status: int, code: str | None) -> dict:
    assert reply.status_code == status
    assert reply.headers["x-request-id"].startswith("req_")
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return dict(error)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sk-aicy-unknownkey"},
    ],
)
def test_bad_or_missing_key_is_401(aicy: AicyProcess, headers: dict[str, str]) -> None:
    reply = httpx.post(f"{aicy.base_url}/chat/completions", json=CHAT, headers=headers)
    error = _assert_error_shape(reply, 401, "invalid_api_key")
    assert "sk-aicy-unknownkey" not in reply.text
    assert error["type"] == "invalid_request_error"


def test_sdk_raises_authentication_error(aicy: AicyProcess) -> None:
    bad = OpenAI(base_url=aicy.base_url, api_key="sk-aicy-wrong-wrong-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.models.list()
    assert caught.value.code == "invalid_api_key"
    assert caught.value.request_id


def test_malformed_json_is_400(aicy: AicyProcess, api_key: str) -> None:
    reply = httpx.post(f"{aicy.base_url}/responses", content=b"{not json", headers=_auth(api_key))
    _assert_error_shape(reply, 400, "invalid_json")


def test_body_that_is_not_an_object_is_400(aicy: AicyProcess, api_key: str) -> None:
    reply = httpx.post(f"{aicy.base_url}/chat/completions", json=[1, 2], headers=_auth(api_key))
    _assert_error_shape(reply, 400, "invalid_type")


def test_oversized_body_is_413(aicy: AicyProcess, api_key: str) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * (TEST_MAX_BODY + 10)}]}
    reply = httpx.post(f"{aicy.base_url}/chat/completions", json=big, headers=_auth(api_key))
    _assert_error_shape(reply, 413, "request_too_large")


def test_oversized_chunked_body_is_413(aicy: AicyProcess, api_key: str) -> None:
    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(TEST_MAX_BODY // 65536 + 2):
            yield b" " * 65536

    reply = httpx.post(f"{aicy.base_url}/chat/completions", content=chunks(), headers=_auth(api_key))
    _assert_error_shape(reply, 413, "request_too_large")


def test_unknown_route_is_openai_shaped_404(aicy: AicyProcess, api_key: str) -> None:
    reply = httpx.get(f"{aicy.base_url}/nothing-here", headers=_auth(api_key))
    _assert_error_shape(reply, 404, "unknown_url")


def test_every_reply_has_a_request_id(aicy: AicyProcess, api_key: str) -> None:
    ok = httpx.get(f"{aicy.base_url}/models", headers=_auth(api_key))
    assert ok.status_code == 200 and ok.headers["x-request-id"].startswith("req_")
    other = httpx.get(f"{aicy.base_url}/models", headers=_auth(api_key))
    assert other.headers["x-request-id"] != ok.headers["x-request-id"]


def test_cors_preflight_is_answered(aicy: AicyProcess) -> None:
    reply = httpx.options(
        f"{aicy.base_url}/chat/completions",
        headers={
            "Origin": "app://cherry-studio",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-retry-count",
        },
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] in ("*", "app://cherry-studio")
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "x-stainless-retry-count" in reply.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("path", ["/chat/completions", "/models"])
def test_browser_replies_carry_cors_headers_and_one_request_id(
    aicy: AicyProcess, api_key: str, path: str
) -> None:
    """Generation routes are served by the edge itself, the others through Starlette: both get the same
    headers, on success and on error, and the request id appears once."""
    origin = {"Origin": "https://chat.example"}
    if path == "/models":
        replies = [
            httpx.get(f"{aicy.base_url}{path}", headers={**origin, **_auth(api_key)}),
            httpx.get(f"{aicy.base_url}{path}", headers=origin),
        ]
    else:
        replies = [
            httpx.post(f"{aicy.base_url}{path}", json=CHAT, headers={**origin, **_auth(api_key)}),
            httpx.post(f"{aicy.base_url}{path}", json=CHAT, headers=origin),
        ]
    assert [r.status_code for r in replies] == [200, 401]
    for reply in replies:
        assert reply.headers["access-control-allow-origin"] == "*"
        assert "x-request-id" in reply.headers["access-control-expose-headers"]
        assert len(reply.headers.get_list("x-request-id")) == 1
    without_origin = httpx.get(f"{aicy.base_url}/models", headers=_auth(api_key))
    assert "access-control-allow-origin" not in without_origin.headers


def test_x_api_key_header_is_accepted(aicy: AicyProcess, api_key: str) -> None:
    reply = httpx.get(f"{aicy.base_url}/models", headers={"x-api-key": api_key})
    assert reply.status_code == 200


def _sse_blocks(raw: bytes) -> list[list[str]]:
    assert raw.endswith(b"\n\n"), "every event must end with a blank line"
    return [block.split("\n") for block in raw.decode().split("\n\n") if block]


def test_chat_sse_framing(aicy: AicyProcess, api_key: str) -> None:
    import json

    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream(
        "POST", f"{aicy.base_url}/chat/completions", json=body, headers=_auth(api_key)
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert reply.headers["cache-control"] == "no-cache"
        raw = reply.read()
    blocks = _sse_blocks(raw)
    assert blocks[-1] == ["data: [DONE]"]
    for block in blocks[:-1]:
        assert len(block) == 1 and block[0].startswith("data: ")
        assert isinstance(json.loads(block[0][6:]), dict)
    assert not any(line.startswith("id:") for block in blocks for line in block)


def test_responses_sse_framing(aicy: AicyProcess, api_key: str) -> None:
    import json

    body = {"model": MODEL, "input": "Hi", "stream": True, "max_output_tokens": 20}
    with httpx.stream("POST", f"{aicy.base_url}/responses", json=body, headers=_auth(api_key)) as reply:
        raw = reply.read()
    blocks = _sse_blocks(raw)
    for number, block in enumerate(blocks):
        assert len(block) == 2
        assert block[0].startswith("event: ") and block[1].startswith("data: ")
        payload = json.loads(block[1][6:])
        assert payload["type"] == block[0][7:]
        assert payload["sequence_number"] == number
    assert b"[DONE]" not in raw
    assert not any(line.startswith("id:") for block in blocks for line in block)


def test_error_before_stream_is_plain_json(aicy: AicyProcess, api_key: str) -> None:
    body = {"model": "no-such-model", "input": "Hi", "stream": True}
    reply = httpx.post(f"{aicy.base_url}/responses", json=body, headers=_auth(api_key))
    assert reply.headers["content-type"].startswith("application/json")
    _assert_error_shape(reply, 404, "model_not_found")
