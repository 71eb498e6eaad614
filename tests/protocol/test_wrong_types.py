"""Wrong JSON types anywhere in a message are 400s naming the field, never a crash of the translation."""

from __future__ import annotations

from typing import Any

import pytest

from aicy.errors import InvalidRequest
from aicy.protocol import chat, responses


@pytest.mark.parametrize("role", [[], {}, 1, None, True])
def test_chat_message_role_of_any_type(role: Any) -> None:
    body = {"model": "m", "messages": [{"role": role, "content": "Hi"}]}
    with pytest.raises(InvalidRequest) as caught:
        chat.to_generation(chat.parse_request(body))
    assert caught.value.param == "messages[0].role"


@pytest.mark.parametrize("value", [[], {}, 1, None, True, "\u0000"])
def test_responses_item_fields_of_any_type(value: Any) -> None:
    for item in (
        {"role": value, "content": "Hi"},
        {"type": value},
        {"role": "user", "content": [{"type": value}]},
    ):
        body = {"model": "m", "input": [item]}
        try:
            request = responses.parse_request(body)
            responses.to_generation(request, [], responses.input_items(request))
        except InvalidRequest as exc:
            assert exc.param is not None and exc.param.startswith("input[0]")
