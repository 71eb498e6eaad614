"""A custom tool's input decoded from streamed JSON arguments: deltas that add up to the final input."""

from __future__ import annotations

import json

import pytest

from aicy.protocol.custom_input import CustomInputStream, final_input

PATCH = '*** Begin Patch\n*** Add File: a.txt\n+héllo "quoted" \\ back\tslash 😀\n*** End Patch'


def _stream(arguments: str, size: int) -> tuple[list[str], str]:
    stream = CustomInputStream()
    pieces = [stream.feed(arguments[i : i + size]) for i in range(0, len(arguments), size)]
    pieces.append(stream.rest())
    return [p for p in pieces if p], final_input(arguments)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
def test_deltas_add_up_to_the_input_whatever_the_fragment_size(size: int) -> None:
    for arguments in (json.dumps({"input": PATCH}), json.dumps({"input": PATCH}, ensure_ascii=False)):
        pieces, final = _stream(arguments, size)
        assert final == PATCH
        assert "".join(pieces) == PATCH
        if size < 10:
            assert len(pieces) > 3  # it streams as the model writes, not all at the end


def test_a_surrogate_pair_split_across_fragments_is_decoded_whole() -> None:
    arguments = '{"input": "a\\ud83d\\ude00b"}'
    pieces, final = _stream(arguments, 1)
    assert final == "a😀b" and "".join(pieces) == "a😀b"
    assert all("\ud83d" not in p for p in pieces)


def test_raw_newlines_in_the_string_are_taken_as_models_write_them() -> None:
    arguments = '{"input": "line one\nline two"}'
    assert final_input(arguments) == "line one\nline two"
    assert "".join(_stream(arguments, 4)[0]) == "line one\nline two"


@pytest.mark.parametrize(
    "arguments",
    ["*** Begin Patch\nplain text, no JSON", '{"other": 1, "input": "x"}', "[1, 2]", '{"input": 5}', ""],
)
def test_arguments_of_another_shape_are_settled_at_the_end(arguments: str) -> None:
    stream = CustomInputStream()
    streamed = "".join(stream.feed(arguments[i : i + 3]) for i in range(0, len(arguments), 3))
    final = final_input(arguments)
    assert streamed + stream.rest() == final
    expected = "x" if arguments.startswith('{"other"') else arguments
    assert final == expected


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    final = final_input('{"input": "a\\udc00b"}')
    assert final == "a\ufffdb"
    final.encode("utf-8")  # valid UTF-8: it can go out on the wire


def test_text_after_the_closing_quote_is_not_streamed() -> None:
    stream = CustomInputStream()
    assert stream.feed('{"input": "ab') == "ab"
    assert stream.feed('c", "junk": "zzz"}') == "c"
    assert stream.rest() == ""
