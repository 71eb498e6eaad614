"""What differs between the two APIs while a generation is served, one small object per API.

:class:`aicy.serving.generation.Generation` writes the lifecycle once; a dialect says, for its API: what a
stream shows while it waits (``preamble``, ``heartbeat``), how neutral events are encoded (``opening``,
``encode``, ``closing``, ``collected``), how a relayed upstream payload is fitted to the customer
(``relayed``, ``relayed_body``), how payloads are framed on the wire (``frames``), which payload ends the
stream and with which status (``terminal``), what a failure looks like (``failure``), what is done with
a finished reply before the customer has it (``finished``: Responses stores it), and where aicy's own count
goes when a relayed upstream reported no usage (``relayed_usage``, ``usage_payloads``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aicy.errors import AicyError
from aicy.protocol import chat, responses, sse
from aicy.serving.metering import UsageTracker
from aicy.types import JSON, Event, Usage

RESPONSE_TERMINALS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
STORED_STATUSES = frozenset({"completed", "incomplete"})


class Dialect(Protocol):
    def preamble(self) -> bytes:
        """What a stream shows at once when the request must wait for a slot."""
        ...

    def heartbeat(self) -> bytes | None:
        """An event repeated while a stream waits to start (None: comments only)."""
        ...

    def opening(self) -> list[JSON]: ...

    def encode(self, event: Event) -> list[JSON]: ...

    def closing(self) -> list[JSON]: ...

    def collected(self) -> JSON:
        """The whole reply built from the neutral events fed to ``encode``."""
        ...

    def relayed(self, payload: JSON, tracker: UsageTracker) -> bool:
        """Fit an upstream payload of this API for the customer, in place; False drops it."""
        ...

    def relayed_body(self, body: JSON, tracker: UsageTracker) -> None: ...

    def relayed_usage(self, payload: JSON, usage: Usage) -> None:
        """Show ``usage`` (aicy's count) in a relayed whole reply, or a relayed stream's terminal payload."""
        ...

    def usage_payloads(self, usage: Usage, last: JSON | None) -> list[JSON]:
        """What a relayed stream that reported no usage ends with to show ``usage`` (``last``: its last
        payload)."""
        ...

    def frames(self, payloads: list[JSON]) -> bytes: ...

    def terminal(self, payload: JSON) -> str | None:
        """The status a payload ends the stream with, or None for an ordinary one."""
        ...

    def end(self, terminal_seen: bool) -> tuple[str, bytes]:
        """(status, closing bytes) when the source ended: Chat's ``[DONE]``, or a cut Responses stream."""
        ...

    def outcome(self, body: JSON) -> str:
        """The status a whole (non-streamed) reply is settled with."""
        ...

    def failure(self, error: AicyError) -> bytes:
        """An error in-band, for a stream whose status line went out."""
        ...

    async def finished(self, response: JSON, channel: str | None) -> None:
        """A finished reply, before the customer has it (and before its bill is settled)."""
        ...


def replace_model(payload: dict[str, Any], model: str) -> None:
    """Show the customer's model id, as the customer asked for it, wherever the upstream names one."""
    if "model" in payload:
        payload["model"] = model
    inner = payload.get("response")
    if isinstance(inner, dict) and "model" in inner:
        inner["model"] = model


class ChatDialect:
    """Chat Completions: ``data:`` chunks, ``[DONE]`` at the end, errors as an ``{"error": …}`` chunk."""

    def __init__(self, request: chat.ChatCompletionRequest) -> None:
        self.model = request.model
        self.include_usage = request.include_usage
        self.encoder = chat.ChatEncoder(
            request.model, request.include_usage, logprobs=request.logprobs is True
        )

    def preamble(self) -> bytes:
        return b""

    def heartbeat(self) -> bytes | None:
        return None

    def opening(self) -> list[JSON]:
        return self.encoder.start()

    def encode(self, event: Event) -> list[JSON]:
        return self.encoder.feed(event)

    def closing(self) -> list[JSON]:
        return []

    def collected(self) -> JSON:
        return self.encoder.completion()

    def relayed(self, payload: JSON, tracker: UsageTracker) -> bool:
        """Untouched but for the model name, and the usage chunk the client did not ask for (aicy always
        asks the upstream for usage, to bill)."""
        tracker.chat_chunk(payload)
        replace_model(payload, self.model)
        if not self.include_usage:
            if payload.get("usage") and not payload.get("choices"):
                return False
            payload.pop("usage", None)
        return True

    def relayed_body(self, body: JSON, tracker: UsageTracker) -> None:
        tracker.chat_chunk(body)
        replace_model(body, self.model)

    def relayed_usage(self, payload: JSON, usage: Usage) -> None:
        payload["usage"] = chat.usage_json(usage)

    def usage_payloads(self, usage: Usage, last: JSON | None) -> list[JSON]:
        """The usage chunk the client asked for, in the stream's own id (OpenAI's shape: no choices)."""
        if not self.include_usage:
            return []
        last = last or {}
        chunk: JSON = {
            "id": last.get("id") or self.encoder.id,
            "object": "chat.completion.chunk",
            "created": last.get("created") or self.encoder.created,
            "model": self.model,
            "system_fingerprint": last.get("system_fingerprint"),
            "choices": [],
            "usage": chat.usage_json(usage),
        }
        return [chunk]

    def frames(self, payloads: list[JSON]) -> bytes:
        return b"".join([sse.data_event(p) for p in payloads])

    def terminal(self, payload: JSON) -> str | None:
        return None

    def end(self, terminal_seen: bool) -> tuple[str, bytes]:
        return "completed", sse.DONE

    def outcome(self, body: JSON) -> str:
        return "completed"

    def failure(self, error: AicyError) -> bytes:
        return sse.data_event(error.body())

    async def finished(self, response: JSON, channel: str | None) -> None:
        return None


class ResponsesDialect:
    """The Responses API: typed events with sequence numbers, ending in ``response.completed`` (or
    ``incomplete``/``failed``); finished responses are stored under aicy's own id.

    While a stream waits for a slot it has already shown ``response.created`` and ``in_progress`` and
    repeats ``response.in_progress`` until output begins. An upstream of this API is relayed with aicy's
    response id and the chain id aicy resolved; when aicy opened the stream early, the upstream's own opening
    events are dropped and the rest continue aicy's sequence numbers, so clients see one response.
    """

    def __init__(
        self,
        request: responses.ResponsesRequest,
        encoder: responses.ResponsesEncoder,
        store: Callable[[JSON, str | None, str | None], Awaitable[None]] | None,
    ) -> None:
        self.model = request.model
        self.previous_response_id = request.previous_response_id
        self.encoder = encoder
        self.response_id = str(encoder.response["id"])
        self._store = store
        self.upstream_id: str | None = None  # a relaying upstream's own id for this response
        self.opened_early = False
        self.output_started = False
        self.last_sequence = -1
        self.snapshot: JSON = {}

    def preamble(self) -> bytes:
        self.opened_early = True
        opening = self.encoder.start()  # not output: heartbeats go on until output begins
        return b"".join([sse.typed_event(e) for e in opening])

    def heartbeat(self) -> bytes | None:
        if not self.opened_early or self.output_started:
            return None
        return sse.typed_event(self.encoder.heartbeat())

    def opening(self) -> list[JSON]:
        return [] if self.opened_early else self.encoder.start()

    def encode(self, event: Event) -> list[JSON]:
        return self.encoder.feed(event)

    def closing(self) -> list[JSON]:
        return self.encoder.finish()

    def collected(self) -> JSON:
        self.encoder.finish()
        return self.encoder.response

    def _restore(self, payload: JSON) -> None:
        """aicy's response id (an upstream's may repeat; stored responses are aicy's) and the chain aicy
        resolved (the upstream was sent the whole history instead)."""
        replace_model(payload, self.model)
        inner = payload.get("response")
        target = inner if isinstance(inner, dict) else payload
        if target.get("object") == "response":
            upstream_id = target.get("id")
            if isinstance(upstream_id, str) and upstream_id != self.response_id and "\x00" not in upstream_id:
                self.upstream_id = upstream_id[:200]  # kept as a note; NUL is refused by PostgreSQL text
            target["id"] = self.response_id
            target["previous_response_id"] = self.previous_response_id

    def relayed(self, payload: JSON, tracker: UsageTracker) -> bool:
        self._restore(payload)
        tracker.responses_event(payload)
        if self.opened_early:
            if payload.get("type") in ("response.created", "response.in_progress"):
                return False
            payload["sequence_number"] = self.encoder.next_sequence()
        if isinstance(payload.get("sequence_number"), int):
            self.last_sequence = payload["sequence_number"]
        if isinstance(payload.get("response"), dict):
            self.snapshot = payload["response"]
        return True

    def relayed_body(self, body: JSON, tracker: UsageTracker) -> None:
        self._restore(body)
        tracker.response(body)

    def relayed_usage(self, payload: JSON, usage: Usage) -> None:
        inner = payload.get("response")
        target = inner if isinstance(inner, dict) else payload
        target["usage"] = responses.usage_json(usage)

    def usage_payloads(self, usage: Usage, last: JSON | None) -> list[JSON]:
        return []  # the usage is in the terminal event (a stream cut before it failed: it is billed only)

    def frames(self, payloads: list[JSON]) -> bytes:
        if payloads:
            self.output_started = True
        return b"".join([sse.typed_event(p) for p in payloads])

    def terminal(self, payload: JSON) -> str | None:
        return RESPONSE_TERMINALS.get(str(payload.get("type")))

    def end(self, terminal_seen: bool) -> tuple[str, bytes]:
        if terminal_seen:
            return "completed", b""
        lost = AicyError(
            "The upstream ended the stream without finishing the response.",
            status=502,
            type="server_error",
            code="upstream_connection_lost",
        )
        return "failed", self.failure(lost)

    def outcome(self, body: JSON) -> str:
        return str(body.get("status") or "completed")

    def failure(self, error: AicyError) -> bytes:
        code, message = error.code or error.type, error.message
        if self.opened_early or not self.snapshot:
            return self.frames(self.encoder.fail(code, message))
        response: JSON = {**self.snapshot, "status": "failed", "error": {"code": code, "message": message}}
        self.last_sequence += 1
        failed = {"type": "response.failed", "sequence_number": self.last_sequence, "response": response}
        return self.frames([failed])

    async def finished(self, response: JSON, channel: str | None) -> None:
        if self._store is not None and response.get("status") in STORED_STATUSES:
            await self._store(response, channel, self.upstream_id)
