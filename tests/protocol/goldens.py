"""Golden files for translation tests: recorded upstream traffic in, client traffic compared with a kept copy.

Generated ids and timestamps differ on every run, so outputs are normalised before comparing: each generated
id becomes a numbered placeholder (the same id keeps the same placeholder, so links between events show) and
each timestamp becomes ``<time>``. Set ``AICY_UPDATE_GOLDEN=1`` to rewrite the expected files, then read the
diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from aicy.protocol import responses
from aicy.protocol.chat import ChatEncoder
from aicy.protocol.responses import ResponsesEncoder
from aicy.protocol.upstream_chat import ChatStreamDecoder
from aicy.protocol.upstream_responses import ResponsesStreamDecoder
from aicy.types import Event

GOLDEN = Path(__file__).parent / "golden"
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)

# ids made by aicy.protocol.ids (prefix + lowercase hex); upstream ids such as "call_Xb7k…" are kept
_GENERATED_ID = re.compile(r"^(chatcmpl-|resp_|msg_|fc_|rs_|call_)[0-9a-f]{24,}$")
_TIME_KEYS = {"created", "created_at", "completed_at"}


def read_sse(name: str) -> list[dict[str, Any]]:
    """The JSON payloads of a recorded event stream (``[DONE]`` and comments dropped)."""
    payloads = []
    for block in (GOLDEN / name).read_text().split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.splitlines() if line.startswith("data:")]
        if data and data != ["[DONE]"]:
            payloads.append(json.loads("\n".join(data)))
    return payloads


def read_json(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def normalise(value: Any) -> Any:
    """``value`` with generated ids numbered per prefix (``<msg_1>``) and timestamps as ``<time>``."""
    names: dict[str, str] = {}

    def placeholder(text: str) -> str:
        if text not in names:
            prefix = _GENERATED_ID.match(text)
            assert prefix is not None
            count = sum(1 for n in names.values() if n.startswith(f"<{prefix[1]}"))
            names[text] = f"<{prefix[1]}{count + 1}>"
        return names[text]

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if key in _TIME_KEYS and isinstance(node, int):
            return "<time>"
        if isinstance(node, str) and _GENERATED_ID.match(node):
            return placeholder(node)
        return node

    return walk(value)


def assert_golden(name: str, value: Any) -> None:
    path = GOLDEN / name
    actual = normalise(value)
    if os.environ.get("AICY_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
        return
    assert path.exists(), f"no golden file {name}: run with AICY_UPDATE_GOLDEN=1 and review what it wrote"
    assert actual == json.loads(path.read_text())


# the two translation paths, end to end (decoder -> neutral events -> the other API's encoder)


def decode_chat(chunks: list[dict[str, Any]]) -> list[Event]:
    decoder = ChatStreamDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def decode_responses(stream: list[dict[str, Any]]) -> list[Event]:
    decoder = ResponsesStreamDecoder()
    events = [event for item in stream for event in decoder.feed(item)]
    return events + decoder.close()


def responses_encoder(request: dict[str, Any]) -> ResponsesEncoder:
    parsed = responses.parse_request(request)
    return ResponsesEncoder(responses.skeleton(parsed, "resp_" + "0" * 48, parsed.model))


def to_responses_stream(events: list[Event], request: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Responses stream events for neutral ``events``, and the final response object.

    Each event is serialised as soon as it is made, as the server does: the encoder's events share its live
    state (``response.created`` holds the very ``output`` list that later items are appended to).
    """
    encoder = responses_encoder(request)
    out: list[dict[str, Any]] = sdk_round_trip(encoder.start())
    for event in events:
        out += sdk_round_trip(encoder.feed(event))
    out += sdk_round_trip(encoder.finish())
    return out, encoder.response


def to_chat_stream(events: list[Event], model: str) -> list[dict[str, Any]]:
    encoder = ChatEncoder(model, include_usage=True)
    out: list[dict[str, Any]] = sdk_round_trip(encoder.start())
    for event in events:
        out += sdk_round_trip(encoder.feed(event))
    return out


def to_chat_completion(events: list[Event], model: str) -> dict[str, Any]:
    encoder = ChatEncoder(model)
    for event in events:
        encoder.feed(event)
    return encoder.completion()


# what the official SDK makes of the translated traffic


def sdk_round_trip(value: Any) -> Any:
    """A JSON round trip: the value as a client receives it."""
    return json.loads(json.dumps(value))


def check_chat_chunks(chunks: list[dict[str, Any]]) -> ChatCompletionStreamState[Any]:
    """Every chunk parses as the SDK's ChatCompletionChunk and feeds the SDK's own accumulator, returned.

    ``get_final_completion()`` raises on ``finish_reason: length``; ``current_completion_snapshot`` does not.
    """
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(sdk_round_trip(chunk)))
    return state


def check_responses_events(events: list[dict[str, Any]], final: dict[str, Any]) -> Response:
    for event in events:
        STREAM_EVENT.validate_python(sdk_round_trip(event))
    return Response.model_validate(sdk_round_trip(final))
