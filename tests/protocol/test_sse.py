from __future__ import annotations

import json

from aicy.protocol import sse


def test_data_event_is_one_data_line_and_a_blank_line() -> None:
    assert sse.data_event({"a": 1, "b": [True, None]}) == b'data: {"a":1,"b":[true,null]}\n\n'


def test_data_event_keeps_newlines_inside_json_on_one_line() -> None:
    frame = sse.data_event({"text": "line one\nline two\r\n"})
    assert frame.count(b"\n") == 2
    assert frame.endswith(b"\n\n")
    assert json.loads(frame.removeprefix(b"data: ")) == {"text": "line one\nline two\r\n"}


def test_data_event_writes_utf8_not_escapes() -> None:
    assert sse.data_event({"t": "héllo ✓"}) == 'data: {"t":"héllo ✓"}\n\n'.encode()


def test_typed_event_names_the_event_after_its_type() -> None:
    payload = {"type": "response.output_text.delta", "sequence_number": 3, "delta": "hi"}
    frame = sse.typed_event(payload)
    event_line, data_line, blank, end = frame.split(b"\n")
    assert event_line == b"event: response.output_text.delta"
    assert json.loads(data_line.removeprefix(b"data: ")) == payload
    assert (blank, end) == (b"", b"")
    assert b"id:" not in frame


def test_constants() -> None:
    assert sse.DONE == b"data: [DONE]\n\n"
    assert sse.KEEPALIVE.startswith(b":")
    assert sse.KEEPALIVE.endswith(b"\n\n")
