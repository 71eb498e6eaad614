"""A request body in a channel's dialect: explicit operator settings for Chat servers that predate parts of
the API (never a guess)."""

from __future__ import annotations

from aicy.domain.channels import Channel
from aicy.types import JSON


def adapt_body(channel: Channel, body: JSON) -> JSON:
    """``max_tokens_field`` spells the output limit; ``json_schema_style`` ``json_object_schema`` rewrites a
    ``json_schema`` response format into llama-cpp-python's ``{"type": "json_object", "schema": …}``."""
    if channel.wire_api != "chat":
        return body
    wanted = channel.max_tokens_field
    other = "max_tokens" if wanted == "max_completion_tokens" else "max_completion_tokens"
    if other in body and wanted not in body:
        body = {**body, wanted: body[other]}
        del body[other]
    fmt = body.get("response_format")
    rewrite = channel.json_schema_style == "json_object_schema"
    if rewrite and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        body = {**body, "response_format": {"type": "json_object", "schema": schema}}
    return body
