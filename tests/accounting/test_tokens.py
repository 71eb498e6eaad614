"""The offline token counter: the family's tokenizer, the message rule, and no download."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from aicy.accounting import tokens
from aicy.accounting.tokens import (
    Prompt,
    chat_input_tokens,
    count_text,
    encoding_for,
    output_tokens,
    responses_input_tokens,
)
from aicy.types import FunctionTool, GenerationRequest, Message, ToolCall

# (text, o200k_base, cl100k_base), as OpenAI's tiktoken counts them (encode_ordinary)
KNOWN = [
    ("Hello, world!", 4, 4),
    ("Say hello, in a friendly way.", 8, 8),
    ("日本語のテキストです。", 8, 10),
    ("def f(x):\n    return x ** 2\n", 11, 11),
    ("<|endoftext|>", 7, 7),  # a special token's spelling in a message is ordinary text
    ("   spaces   and\ttabs\n\n", 7, 7),
    ('{"city": "Paris", "unit": "celsius"}', 13, 13),
    ("", 0, 0),
]


@pytest.mark.parametrize(("text", "o200k", "cl100k"), KNOWN)
def test_counts_are_tiktokens(text: str, o200k: int, cl100k: int) -> None:
    assert count_text(text, "o200k_base") == o200k
    assert count_text(text, "cl100k_base") == cl100k


@pytest.mark.parametrize(
    ("names", "encoding"),
    [
        (("gpt-4o-mini",), "o200k_base"),
        (("gpt-5.1-codex-mini",), "o200k_base"),
        (("o3-mini",), "o200k_base"),
        (("o4-mini",), "o200k_base"),
        (("gpt-4.1",), "o200k_base"),
        (("openai/gpt-oss-20b",), "o200k_base"),
        (("gpt-4",), "cl100k_base"),
        (("gpt-4-turbo-2024-04-09",), "cl100k_base"),
        (("GPT-3.5-Turbo",), "cl100k_base"),
        (("llama-3.1-8b",), "o200k_base"),  # unknown family: the default
        (("smol-upstream", "gpt-4-turbo"), "cl100k_base"),  # the upstream's name says nothing: aicy's id
        (("gpt-4o", "gpt-4-turbo"), "o200k_base"),  # the upstream's name decides first
        ((None, ""), "o200k_base"),
    ],
)
def test_the_family_picks_the_encoding(names: tuple[str | None, ...], encoding: str) -> None:
    assert encoding_for(*names) == encoding


# OpenAI's token-counting guide: this conversation is 129 prompt tokens on GPT-4 and 124 on GPT-4o, as the
# API itself reports.
GUIDE = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into "
        "plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


def test_the_message_rule_gives_openais_own_figures() -> None:
    assert chat_input_tokens({"messages": GUIDE}, "cl100k_base") == 129
    assert chat_input_tokens({"messages": GUIDE}, "o200k_base") == 124


def n(text: str) -> int:
    return count_text(text, "o200k_base")


def test_chat_messages_parts_tool_calls_and_tools() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    body = {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Oslo?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},  # not text
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
        ],
        "tools": [tool],
        "temperature": 0.5,  # settings are not text
    }
    expected = (
        3
        + (3 + n("user") + n("Weather in Oslo?"))
        + (3 + n("assistant") + n("get_weather") + n('{"city":"Oslo"}'))
        + (3 + n("tool") + n("Sunny, 21 C"))
        + n('{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}')
    )
    assert chat_input_tokens(body, "o200k_base") == expected


def test_responses_instructions_string_input_and_items() -> None:
    assert responses_input_tokens({"instructions": "Be brief.", "input": "Hi"}, "o200k_base") == (
        3 + (3 + n("system") + n("Be brief.")) + (3 + n("user") + n("Hi"))
    )
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Call the tool."}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "Sunny"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "It is sunny."}],
        },
    ]
    assert responses_input_tokens({"input": items}, "o200k_base") == (
        3
        + (3 + n("user") + n("Weather in Oslo?"))
        + (3 + n("Call the tool."))
        + (3 + n("get_weather") + n('{"city":"Oslo"}'))
        + (3 + n("Sunny"))
        + (3 + n("assistant") + n("It is sunny."))
    )


def test_a_neutral_request_counts_as_its_chat_form() -> None:
    request = GenerationRequest(
        model="m",
        messages=[
            Message("system", "Be brief."),
            Message("user", "Weather in Oslo?"),
            Message("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),)),
            Message("tool", "Sunny", tool_call_id="call_1"),
        ],
        tools=(FunctionTool("get_weather", parameters={"type": "object"}),),
    )
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        ],
    }
    assert Prompt(("gpt-4o",), request=request).tokens() == chat_input_tokens(body, "o200k_base")
    assert Prompt(("gpt-4-turbo",), api="chat", body=body).tokens() == chat_input_tokens(body, "cl100k_base")
    assert Prompt(("x",), api="responses", body={"input": "Hi"}).tokens() == 3 + 3 + n("user") + n("Hi")


def test_output_pieces_are_counted_whole() -> None:
    assert output_tokens(["Hello from the upstream.", '{"a": 1}'], "o200k_base") == n(
        "Hello from the upstream."
    ) + n('{"a": 1}')


def test_odd_inputs_do_not_fail() -> None:
    assert count_text("a\ud800b") == count_text("a\ufffdb")  # a lone surrogate, which JSON allows
    deep: object = "x"
    for _ in range(2000):
        deep = [deep]
    assert chat_input_tokens({"messages": [{"role": "user", "content": deep}]}, "o200k_base") == 3 + 3 + n(
        "user"
    )
    assert chat_input_tokens({"messages": "nonsense", "tools": {"a": 1}}, "o200k_base") == 3
    assert responses_input_tokens({"input": 5}, "o200k_base") == 3


def test_a_tokenizer_that_cannot_load_falls_back_to_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(encoding: str) -> None:
        raise OSError("no such file")

    monkeypatch.setattr(tokens, "_tokenizer", broken)
    assert count_text("12345678") == 2


def test_the_encodings_ship_with_the_package_and_nothing_is_downloaded(tmp_path) -> None:
    """A fresh process with every socket refused and an empty home still counts."""
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network refused by the test")

        socket.socket = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from aicy.accounting.tokens import count_text
        print(count_text("Hello, world!", "o200k_base"), count_text("日本語のテキストです。", "cl100k_base"))
        """
    )
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "10"]
