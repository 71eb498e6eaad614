"""Ids sent by clients never hold U+0000 (PostgreSQL refuses it in text): a 400 naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from aicy.errors import InvalidRequest
from aicy.protocol import chat, responses


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"previous_response_id": "resp_\u0000"}, "previous_response_id"),
        ({"prompt_cache_key": "a\u0000"}, "prompt_cache_key"),
        ({"input": [{"role": "user", "content": "hi", "id": "msg_\u0000"}]}, "input[0].id"),
        (
            {
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "function_call_output", "call_id": "\u0000"},
                ]
            },
            "input[1].call_id",
        ),
    ],
)
def test_responses_ids_with_nul_are_refused(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        responses.parse_request({"model": "m", "input": "hi", **body})
    assert (caught.value.param, caught.value.code) == (param, "invalid_value")


def test_chat_prompt_cache_key_with_nul_is_refused() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "prompt_cache_key": "\u0000"}
    with pytest.raises(InvalidRequest) as caught:
        chat.parse_request(body)
    assert caught.value.param == "prompt_cache_key"


def test_free_text_with_nul_passes_through() -> None:
    body = {"model": "m", "input": "a\u0000b", "user": "u\u0000", "metadata": {"k": "v\u0000"}}
    assert responses.parse_request(body).user == "u\u0000"
    chat.parse_request({"model": "m", "messages": [{"role": "user", "content": "\u0000"}], "user": "\u0000"})
