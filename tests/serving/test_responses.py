"""The Responses API through the official SDK against a real aicy process."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.support import MODEL, count_prompt_tokens


def test_create_with_string_input(client: OpenAI) -> None:
    resp = client.responses.create(model=MODEL, input="Say hello.", max_output_tokens=200)
    assert resp.object == "response"
    assert resp.id.startswith("resp_")
    assert resp.usage is not None
    # The small model usually greets in a few tokens but sometimes rambles: then it is cut, and says so.
    if resp.status != "completed":
        assert resp.status == "incomplete" and resp.incomplete_details is not None
        assert resp.incomplete_details.reason == "max_output_tokens" and resp.usage.output_tokens == 200
    assert resp.output_text
    assert resp.output[0].type == "message"
    assert resp.usage.input_tokens == count_prompt_tokens([{"role": "user", "content": "Say hello."}])
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens


def test_instructions_and_item_list_input(client: OpenAI) -> None:
    resp = client.responses.create(
        model=MODEL,
        instructions="Answer briefly.",
        input=[
            {"role": "developer", "content": "Use English."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there"}]},
        ],
        max_output_tokens=100,
    )
    expected = count_prompt_tokens(
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "system", "content": "Use English."},
            {"role": "user", "content": "Hi there"},
        ]
    )
    assert resp.instructions == "Answer briefly."
    assert resp.usage is not None and resp.usage.input_tokens == expected


def test_max_output_tokens_gives_incomplete(client: OpenAI) -> None:
    resp = client.responses.create(
        model=MODEL, input="Write a long essay about rivers.", max_output_tokens=16
    )
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage is not None and resp.usage.output_tokens == 16


def test_metadata_is_echoed_and_stored(client: OpenAI) -> None:
    resp = client.responses.create(model=MODEL, input="Hi", metadata={"ticket": "42"}, max_output_tokens=30)
    assert resp.metadata == {"ticket": "42"}
    assert client.responses.retrieve(resp.id).metadata == {"ticket": "42"}


def test_stream_helper_gives_final_response(client: OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Say hi.", max_output_tokens=300) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == deltas
    assert final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0
    assert client.responses.retrieve(final.id).output_text == deltas


def test_raw_stream_event_order(client: OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="Hi", stream=True, max_output_tokens=100))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert set(kinds[4:-4]) == {"response.output_text.delta"}


class Pet(BaseModel):
    name: str
    species: str
    age: int


def test_parse_with_pydantic_schema(client: OpenAI) -> None:
    resp = client.responses.parse(
        model=MODEL, input="Invent a pet as JSON.", text_format=Pet, max_output_tokens=200, temperature=0
    )
    assert isinstance(resp.output_parsed, Pet)


def test_json_object_format(client: OpenAI) -> None:
    import json

    resp = client.responses.create(
        model=MODEL,
        input='Reply with a JSON object with the key color, for example {"color": "red"}.',
        text={"format": {"type": "json_object"}},
        max_output_tokens=200,
        temperature=0,
    )
    assert resp.status == "completed"
    assert isinstance(json.loads(resp.output_text), dict)


def test_three_turn_chain_rebuilds_history_without_instructions(client: OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input="My name is Ann.", instructions="Be kind.", max_output_tokens=40, temperature=0
    )
    second = client.responses.create(
        model=MODEL,
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=40,
        temperature=0,
    )
    third = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": "Say it again."}],
        previous_response_id=second.id,
        max_output_tokens=40,
        temperature=0,
    )
    assert third.previous_response_id == second.id
    assert second.instructions is None
    history = [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
        {"role": "assistant", "content": second.output_text},
        {"role": "user", "content": "Say it again."},
    ]
    assert third.usage is not None
    assert third.usage.input_tokens == count_prompt_tokens(history)


def test_unknown_previous_response_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_doesnotexist")
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


def test_store_false_is_not_retrievable(client: OpenAI) -> None:
    resp = client.responses.create(model=MODEL, input="Hi", store=False, max_output_tokens=20)
    assert resp.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="x", previous_response_id=resp.id)


def test_retrieve_and_delete(client: OpenAI) -> None:
    resp = client.responses.create(model=MODEL, input="Hi", max_output_tokens=20)
    assert client.responses.retrieve(resp.id).id == resp.id
    client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(resp.id)


@pytest.mark.parametrize("limit", ["²", "٣", "0", "101", "1e2", "-1", ""])
def test_input_items_limit_must_be_ascii_digits_in_range(client: OpenAI, limit: str) -> None:
    resp = client.responses.create(model=MODEL, max_output_tokens=16, input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_items.list(resp.id, extra_query={"limit": limit})
    assert caught.value.code == "invalid_value" and caught.value.param == "limit"


def test_input_items_pagination(client: OpenAI) -> None:
    texts = [f"note {i}" for i in range(5)]
    resp = client.responses.create(
        model=MODEL, max_output_tokens=16, input=[{"role": "user", "content": t} for t in texts]
    )
    page = client.responses.input_items.list(resp.id, limit=2, order="asc")
    assert page.has_more is True
    assert len(page.data) == 2
    assert page.first_id == page.data[0].id and page.last_id == page.data[1].id
    every = list(client.responses.input_items.list(resp.id, limit=2, order="asc"))
    assert [item.content[0].text for item in every] == texts  # type: ignore[union-attr]
    newest_first = list(client.responses.input_items.list(resp.id))
    assert [item.id for item in newest_first] == [item.id for item in reversed(every)]
    last = client.responses.input_items.list(resp.id, limit=2, order="asc", after=every[3].id)
    assert [i.id for i in last.data] == [every[4].id] and last.has_more is False


def test_other_account_cannot_see_a_response(client: OpenAI, other_client: OpenAI) -> None:
    resp = client.responses.create(model=MODEL, input="private", max_output_tokens=16)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.retrieve(resp.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.input_items.list(resp.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.delete(resp.id)
    with pytest.raises(openai.BadRequestError):
        other_client.responses.create(model=MODEL, input="x", previous_response_id=resp.id)
    assert client.responses.retrieve(resp.id).id == resp.id


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x", "max_output_tokens": 5}, "max_output_tokens", None),
        ({"input": 5}, "input", "invalid_type"),
        ({}, "input", "missing_required_parameter"),
        ({"input": "x", "reasoning": {"effort": "high"}}, "reasoning.effort", "unsupported_parameter"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", None),
        ({"input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", None),
        (
            {
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "data:,"}],
                    }
                ]
            },
            "input[0].content[0]",
            "unsupported_value",
        ),
    ],
)
def test_bad_requests_name_the_param(client: OpenAI, body: dict, param: str, code: str | None) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/responses", body={"model": MODEL, **body}, cast_to=object)
    assert caught.value.param == param
    if code:
        assert caught.value.code == code


def test_codex_style_request_is_accepted(client: OpenAI) -> None:
    stream = client.responses.create(
        model=MODEL,
        instructions="You are a coding agent.",
        stream=True,
        store=False,
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        include=["reasoning.encrypted_content"],
        prompt_cache_key="thread-1",
        max_output_tokens=30,
        extra_body={"client_metadata": {"a": "b"}, "reasoning": None},
    )
    kinds = [e.type for e in stream]
    assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete")
