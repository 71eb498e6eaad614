"""What can go wrong talking to an upstream before the client has seen a byte."""

from __future__ import annotations

from typing import Any

import orjson

from aicy.errors import AicyError
from aicy.upstream.scrub import Scrubber


class UpstreamFailure(Exception):
    """This channel could not take the request; another channel may.

    ``error`` is what the client gets if no channel can; ``retry_after`` is the upstream's hint in seconds.
    ``reason`` is for operators (logged, shown in the channel's health) and holds no secret. ``auth``: the
    channel refused our credentials, or its settings cannot be sent at all; it leaves rotation at once.
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


MAX_MESSAGE = 500  # an upstream's reason quoted in aicy's own message, or a non-JSON error body
MAX_SCANNED = 1 << 16  # a longer upstream message is cut to this, scrubbed, then cut to MAX_MESSAGE


def upstream_error_body(raw: bytes) -> dict[str, Any]:
    """The ``error`` object of an upstream's error reply, whatever shape it came in (not yet scrubbed).

    A reply that is not JSON (a proxy's HTML page) becomes ``{"message": <its text>, "json": False}``."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"message": raw[: MAX_SCANNED + 1].decode("utf-8", errors="replace"), "json": False}
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error
        if isinstance(error, str):
            return {"message": error}
    return {"message": str(body)}


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """On one line, at most ``limit`` characters. Only scrubbed text is cut: a secret cut in two would no
    longer be recognised."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrubbed(message: Any, scrub: Scrubber) -> str:
    """An upstream's message as text, scrubbed. A message too long to scan whole is cut, scrubbed and cut
    again well before the first cut (where a secret may have been cut in two)."""
    text = "" if message is None else message if isinstance(message, str) else str(message)
    if len(text) <= MAX_SCANNED:
        return scrub.text(text)
    return shorten(scrub.text(text[:MAX_SCANNED]))


def upstream_message(raw: bytes, scrub: Scrubber) -> str:
    """What an upstream's error reply says, scrubbed, on one line and short ('' when it says nothing)."""
    return shorten(scrubbed(upstream_error_body(raw).get("message"), scrub))


def client_error_from_upstream(status: int, raw: bytes, scrub: Scrubber) -> AicyError:
    """An upstream 4xx (other than auth and rate limits) is the customer's to see, in OpenAI's shape, with
    every secret it echoed removed."""
    error = upstream_error_body(raw)
    message = scrubbed(error.get("message"), scrub)
    if error.get("json") is False:
        message = shorten(message)
    code, param, kind = error.get("code"), error.get("param"), error.get("type")
    return AicyError(
        message or f"The upstream refused the request ({status}).",
        status=status,
        type=scrub.text(kind) if isinstance(kind, str) and kind else "invalid_request_error",
        code=scrub.text(code) if isinstance(code, str) else None,
        param=scrub.text(param) if isinstance(param, str) else None,
    )


def unavailable(last: str | None = None) -> AicyError:
    """What the customer gets when no channel could take the request; ``last`` says what the last one
    answered (scrubbed and short)."""
    why = f" (last: {last})" if last else ""
    return AicyError(
        f"No upstream could serve this request right now{why}. Please retry shortly.",
        status=503,
        type="service_unavailable_error",
        code="upstream_unavailable",
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
