"""Identifiers in the shapes OpenAI uses on the wire (``resp_…``, ``msg_…``, ``chatcmpl-…``)."""

from __future__ import annotations

import secrets

from aicy.errors import InvalidRequest


def new_id(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}{secrets.token_hex(nbytes)}"


def response_id() -> str:
    return new_id("resp_")


def message_id() -> str:
    return new_id("msg_")


def function_call_item_id() -> str:
    return new_id("fc_")


def custom_tool_call_item_id() -> str:
    return new_id("ctc_")


def call_id() -> str:
    return new_id("call_", 12)


def reasoning_id() -> str:
    return new_id("rs_")


def chat_completion_id() -> str:
    return new_id("chatcmpl-", 15)


def request_id() -> str:
    return new_id("req_", 16)


def check_client_id(value: object, param: str) -> None:
    """Refuse (400, naming ``param``) a client's id that holds U+0000: no id has one, and PostgreSQL cannot
    store or even compare text that does."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidRequest(
            f"Invalid value for '{param}': ids must not contain NUL characters (\\u0000).",
            param=param,
            code="invalid_value",
        )
