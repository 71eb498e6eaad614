"""What can go wrong talking to an upstream before the client has seen a byte."""

from __future__ import annotations

from typing import Any

import orjson

from aicy.errors import AicyError


class UpstreamFailure(Exception):
    """This channel could not take the request; another channel may.

    ``error`` is what the client gets if no channel can; ``retry_after`` is the upstream's hint in seconds.
    """

    def __init__(
        self,
        channel: str,
        reason: str,
        error: AicyError,
        *,
        retry_after: float | None = None,
        auth: bool = False,
    ) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.error = error
        self.retry_after = retry_after
        self.auth = auth


def upstream_error_body(raw: bytes) -> dict[str, Any]:
    """The ``error`` object of an upstream's error reply, whatever shape it came in."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"message": raw.decode("utf-8", errors="replace")[:500]}
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error
        if isinstance(error, str):
            return {"message": error}
    return {"message": str(body)[:500]}


def client_error_from_upstream(status: int, raw: bytes) -> AicyError:
    """An upstream 4xx (other than auth and rate limits) is the customer's to see, in OpenAI's shape."""
    error = upstream_error_body(raw)
    return AicyError(
        str(error.get("message") or f"The upstream refused the request ({status})."),
        status=status,
        type=str(error.get("type") or "invalid_request_error"),
        code=error.get("code") if isinstance(error.get("code"), str) else None,
        param=error.get("param") if isinstance(error.get("param"), str) else None,
    )


def parse_retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None
