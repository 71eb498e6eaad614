"""Identifiers in the shapes OpenAI uses on the wire (``resp_…``, ``msg_…``, ``chatcmpl-…``)."""

from __future__ import annotations

import secrets


def new_id(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}{secrets.token_hex(nbytes)}"


def response_id() -> str:
    return new_id("resp_")


def message_id() -> str:
    return new_id("msg_")


def function_call_item_id() -> str:
    return new_id("fc_")


def call_id() -> str:
    return new_id("call_", 12)


def reasoning_id() -> str:
    return new_id("rs_")


def chat_completion_id() -> str:
    return new_id("chatcmpl-", 15)


def request_id() -> str:
    return new_id("req_", 16)
