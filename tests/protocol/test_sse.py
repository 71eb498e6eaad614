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


STREAM = (
    ": comment first\n"
    "event: response.created\n"
    'data: {"type":"response.created"}\n'
    "\n"
    'data: {"a":\n'
    'data: "héllo"}\n'
    "\n"
    "data: [DONE]\n"
    "\n"
)
EXPECTED = [("response.created", '{"type":"response.created"}'), (None, '{"a":\n"héllo"}'), (None, "[DONE]")]


def _decode_in_pieces(raw: bytes, size: int) -> list[tuple[str | None, str]]:
    decoder = sse.SSEDecoder()
    out = []
    for i in range(0, len(raw), size):
        out.extend(decoder.feed(raw[i : i + size]))
    return out


def test_decoder_dispatches_on_blank_lines_and_joins_data_lines() -> None:
    assert sse.SSEDecoder().feed(STREAM.encode()) == EXPECTED


def test_decoder_accepts_every_line_ending_split_anywhere() -> None:
    for ending in ("\n", "\r\n", "\r"):
        raw = STREAM.replace("\n", ending).encode()
        for size in (1, 2, 3, 7, len(raw)):
            assert _decode_in_pieces(raw, size) == EXPECTED, (ending, size)


def test_decoder_waits_for_the_end_of_a_line_and_joins_a_crlf_split_between_reads() -> None:
    decoder = sse.SSEDecoder()
    assert decoder.feed(b'data: {"x"') == []
    assert decoder.feed(b":1}\r") == []
    assert decoder.feed(b"\n\r") == [(None, '{"x":1}')]  # the blank line is the lone CR
    assert decoder.feed(b"data: a\r") == []
    # The LF that opens the next read ends the same line as that CR: not a blank line between a and b.
    assert decoder.feed(b"\ndata: b\n\n") == [(None, "a\nb")]


def test_decoder_reads_a_whole_reply_in_one_feed() -> None:
    events = b"".join(sse.data_event({"i": i, "text": "x" * 200}) for i in range(2000))
    decoded = sse.SSEDecoder().feed(events + sse.DONE)
    assert len(decoded) == 2001
    assert json.loads(decoded[1999][1]) == {"i": 1999, "text": "x" * 200}
    assert decoded[-1] == (None, "[DONE]")
