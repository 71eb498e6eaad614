"""Log-probabilities in both APIs: the request fields, the neutral events, what the encoders write (checked
against the official SDK's types), and translation through upstreams of the other API in both directions."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from aicy.errors import InvalidRequest
from aicy.protocol import chat, responses
from aicy.protocol.upstream_chat import (
    ChatStreamDecoder,
    chat_completion_events,
    chat_request_body,
    parse_logprobs,
)
from aicy.protocol.upstream_responses import ResponsesStreamDecoder, response_events, responses_request_body
from aicy.types import Event, Finish, GenerationRequest, Message, TextDelta, TokenLogprob, TopLogprob, Usage
from tests.protocol.goldens import (
    STREAM_EVENT,
    check_chat_chunks,
    check_responses_events,
    responses_encoder,
    sdk_round_trip,
    to_responses_stream,
)

HI = TokenLogprob("Hi", -0.25, b"Hi", (TopLogprob("Hi", -0.25, b"Hi"), TopLogprob("Hey", -1.5, b"Hey")))
BANG = TokenLogprob("!", -0.5, None, (TopLogprob("!", -0.5, None),))  # a source that gave no bytes
EVENTS: list[Event] = [TextDelta("Hi", (HI,)), TextDelta("!", (BANG,)), Finish("stop"), Usage(5, 2)]
USER = [{"role": "user", "content": "hi"}]


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": USER, **fields}


def chat_error(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        chat.parse_request(chat_body(**fields))
    return info.value


# requests


def test_chat_request_fields_become_the_neutral_request() -> None:
    asked = chat.to_generation(chat.parse_request(chat_body(logprobs=True, top_logprobs=3)))
    assert (asked.logprobs, asked.top_logprobs) == (True, 3)
    plain = chat.to_generation(chat.parse_request(chat_body(logprobs=False)))
    assert (plain.logprobs, plain.top_logprobs) == (False, None)
    bare = chat.to_generation(chat.parse_request(chat_body(logprobs=True)))
    assert (bare.logprobs, bare.top_logprobs) == (True, None)


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
        ({"logprobs": True, "top_logprobs": -1}, "top_logprobs", "integer_below_min_value"),
        ({"top_logprobs": 2}, "top_logprobs", "invalid_value"),
        ({"logprobs": False, "top_logprobs": 2}, "top_logprobs", "invalid_value"),
        ({"logprobs": "sure"}, "logprobs", "invalid_type"),
    ],
)
def test_chat_request_refuses_what_cannot_be_honoured(fields: dict[str, Any], param: str, code: str) -> None:
    error = chat_error(**fields)
    assert (error.status, error.param, error.code) == (400, param, code)


def test_responses_request_fields_become_the_neutral_request() -> None:
    def generation(**fields: Any) -> GenerationRequest:
        request = responses.parse_request({"model": "m", "input": "hi", **fields})
        return responses.to_generation(request, [], responses.input_items(request))

    asked = generation(include=[responses.LOGPROBS_INCLUDE], top_logprobs=4)
    assert (asked.logprobs, asked.top_logprobs) == (True, 4)
    only_include = generation(include=["reasoning.encrypted_content", responses.LOGPROBS_INCLUDE])
    assert (only_include.logprobs, only_include.top_logprobs) == (True, None)
    only_top = generation(top_logprobs=2)  # asking for the likely tokens asks for log-probabilities
    assert (only_top.logprobs, only_top.top_logprobs) == (True, 2)
    neither = generation(top_logprobs=0, include=["reasoning.encrypted_content"])
    assert (neither.logprobs, neither.top_logprobs) == (False, None)
    with pytest.raises(InvalidRequest) as info:
        responses.parse_request({"model": "m", "input": "hi", "top_logprobs": 21})
    assert (info.value.param, info.value.code) == ("top_logprobs", "integer_above_max_value")


def test_responses_echo_top_logprobs() -> None:
    request = responses.parse_request({"model": "m", "input": "hi", "top_logprobs": 7})
    assert responses.skeleton(request, "resp_1", "m")["top_logprobs"] == 7
    plain = responses.parse_request({"model": "m", "input": "hi"})
    assert responses.skeleton(plain, "resp_1", "m")["top_logprobs"] == 0


# encoders


def test_chat_stream_chunks_carry_each_pieces_entries() -> None:
    encoder = chat.ChatEncoder("m", logprobs=True)
    chunks = encoder.start() + [chunk for event in EVENTS for chunk in encoder.feed(event)]
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert [c["choices"][0]["logprobs"] for c in content] == [
        {
            "content": [
                {
                    "token": "Hi",
                    "logprob": -0.25,
                    "bytes": [72, 105],
                    "top_logprobs": [
                        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
                        {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121]},
                    ],
                }
            ],
            "refusal": None,
        },
        {
            "content": [
                {
                    "token": "!",
                    "logprob": -0.5,
                    "bytes": None,
                    "top_logprobs": [{"token": "!", "logprob": -0.5, "bytes": None}],
                }
            ],
            "refusal": None,
        },
    ]
    state = check_chat_chunks(chunks)  # the SDK's own accumulator
    logprobs = state.current_completion_snapshot.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [e.token for e in logprobs.content] == ["Hi", "!"]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(sdk_round_trip(chunk))


def test_chat_completion_has_every_entry_or_null() -> None:
    encoder = chat.ChatEncoder("m", logprobs=True)
    for event in EVENTS:
        encoder.feed(event)
    completion = ChatCompletion.model_validate(sdk_round_trip(encoder.completion()))
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [(e.token, e.logprob) for e in logprobs.content] == [("Hi", -0.25), ("!", -0.5)]
    assert logprobs.content[0].top_logprobs[1].token == "Hey"

    plain = chat.ChatEncoder("m")
    chunks = [chunk for event in EVENTS for chunk in plain.feed(event)]
    assert all(c["choices"][0]["logprobs"] is None for c in chunks if c["choices"])
    assert plain.completion()["choices"][0]["logprobs"] is None

    asked_but_none = chat.ChatEncoder("m", logprobs=True)  # a tool call, or a backend that gave none
    asked_but_none.feed(TextDelta("x"))
    assert asked_but_none.completion()["choices"][0]["logprobs"] == {"content": [], "refusal": None}


def test_responses_events_and_output_text_carry_the_entries() -> None:
    request = {"model": "m", "input": "hi", "include": [responses.LOGPROBS_INCLUDE], "top_logprobs": 2}
    events, final = to_responses_stream(EVENTS, request)
    response = check_responses_events(events, final)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["logprobs"] for d in deltas] == [
        [
            {
                "token": "Hi",
                "logprob": -0.25,
                "top_logprobs": [{"token": "Hi", "logprob": -0.25}, {"token": "Hey", "logprob": -1.5}],
            }
        ],
        [{"token": "!", "logprob": -0.5, "top_logprobs": [{"token": "!", "logprob": -0.5}]}],
    ]
    [done] = [e for e in events if e["type"] == "response.output_text.done"]
    assert done["logprobs"] == deltas[0]["logprobs"] + deltas[1]["logprobs"]
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text" and part.logprobs is not None
    assert [(e.token, e.logprob, e.bytes) for e in part.logprobs] == [
        ("Hi", -0.25, [72, 105]),
        ("!", -0.5, [33]),
    ]
    assert [(t.token, t.bytes) for t in part.logprobs[0].top_logprobs] == [
        ("Hi", [72, 105]),
        ("Hey", [72, 101, 121]),
    ]
    [part_done] = [e for e in events if e["type"] == "response.content_part.done"]
    assert part_done["part"]["logprobs"] == final["output"][0]["content"][0]["logprobs"]
    assert final["top_logprobs"] == 2


def test_responses_without_logprobs_keep_empty_lists() -> None:
    events, final = to_responses_stream([TextDelta("Hi"), Finish("stop")], {"model": "m", "input": "hi"})
    check_responses_events(events, final)
    assert all(e["logprobs"] == [] for e in events if e["type"] == "response.output_text.delta")
    assert final["output"][0]["content"][0]["logprobs"] == []


# translation: Chat upstream <-> Responses customer, Responses upstream <-> Chat customer


def asked(top: int | None = 2) -> GenerationRequest:
    return GenerationRequest("m", [Message("user", "hi")], logprobs=True, top_logprobs=top)


def test_upstream_bodies_ask_for_them_in_their_own_api() -> None:
    chat_body = chat_request_body(asked(), "up", stream=True)
    assert (chat_body["logprobs"], chat_body["top_logprobs"]) == (True, 2)
    bare = chat_request_body(asked(None), "up", stream=True)
    assert bare["logprobs"] is True and "top_logprobs" not in bare
    plain = GenerationRequest("m", [Message("user", "hi")])
    assert "logprobs" not in chat_request_body(plain, "up", stream=True)

    body = responses_request_body(asked(3), "up", stream=True)
    assert (body["include"], body["top_logprobs"]) == (["message.output_text.logprobs"], 3)
    assert "include" not in responses_request_body(plain, "up", stream=True)
    assert "top_logprobs" not in responses_request_body(asked(None), "up", stream=True)


CHAT_ENTRY = {
    "token": "Hi",
    "logprob": -0.25,
    "bytes": [72, 105],
    "top_logprobs": [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
        {"token": "Hey", "logprob": -1.5, "bytes": None},
    ],
}


def test_chat_upstream_stream_logprobs_become_output_text_logprobs() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "Hi"},
                    "logprobs": {"content": [CHAT_ENTRY], "refusal": None},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}]},
    ]
    decoder = ChatStreamDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.close()
    hi = TokenLogprob("Hi", -0.25, b"Hi", (TopLogprob("Hi", -0.25, b"Hi"), TopLogprob("Hey", -1.5, None)))
    assert events == [TextDelta("Hi", (hi,)), Finish("stop")]
    out, final = to_responses_stream(
        events, {"model": "m", "input": "hi", "include": [responses.LOGPROBS_INCLUDE]}
    )
    response = check_responses_events(out, final)
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs is not None and part.logprobs[0].top_logprobs[1].bytes == list(b"Hey")


def test_whole_chat_completion_logprobs_are_kept() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "logprobs": {"content": [CHAT_ENTRY], "refusal": None},
                "finish_reason": "stop",
            }
        ]
    }
    [text, finish] = chat_completion_events(body)
    assert isinstance(text, TextDelta) and text.logprobs is not None and text.logprobs[0].token == "Hi"
    assert finish == Finish("stop")


def test_responses_upstream_logprobs_become_chat_logprobs() -> None:
    entry = {"token": "Hi", "logprob": -0.25, "top_logprobs": [{"token": "Hi", "logprob": -0.25}]}
    decoder = ResponsesStreamDecoder()
    delta = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0}
    events = decoder.feed({**delta, "delta": "Hi", "logprobs": [entry]})
    events += decoder.feed({**delta, "delta": "!", "logprobs": []})  # OpenAI's deltas when not asked
    hi = TokenLogprob("Hi", -0.25, None, (TopLogprob("Hi", -0.25, None),))
    assert events == [TextDelta("Hi", (hi,)), TextDelta("!")]
    encoder = chat.ChatEncoder("m", logprobs=True)
    chunks = [c for e in [*events, Finish("stop")] for c in encoder.feed(e)]
    state = check_chat_chunks(chunks)
    logprobs = state.current_completion_snapshot.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [(e.token, e.bytes) for e in logprobs.content] == [("Hi", None)]


def test_whole_response_logprobs_are_kept() -> None:
    part = {"type": "output_text", "text": "Hi", "annotations": [], "logprobs": [CHAT_ENTRY]}
    body = {
        "status": "completed",
        "output": [{"type": "message", "role": "assistant", "content": [part]}],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    events = response_events(body)
    assert isinstance(events[0], TextDelta) and events[0].logprobs is not None
    assert events[0].logprobs[0].token_bytes == b"Hi"


def test_malformed_entries_are_skipped() -> None:
    raw = [
        {"token": "a", "logprob": -1},
        {"token": 3, "logprob": -1},
        {"token": "b", "logprob": True},
        {"token": "c", "logprob": -2, "bytes": [300], "top_logprobs": [{"token": "x"}, "y"]},
        "z",
    ]
    assert parse_logprobs(raw) == (TokenLogprob("a", -1.0), TokenLogprob("c", -2.0))
    assert parse_logprobs(None) is None and parse_logprobs({"content": []}) is None
    assert parse_logprobs([]) is None and parse_logprobs(["z"]) is None


def test_output_text_event_types_validate() -> None:
    encoder = responses_encoder({"model": "m", "input": "hi"})
    for event in encoder.start() + encoder.feed(EVENTS[0]) + encoder.finish():
        STREAM_EVENT.validate_python(sdk_round_trip(event))
    Response.model_validate(sdk_round_trip(encoder.response))
