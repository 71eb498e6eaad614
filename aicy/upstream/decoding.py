"""Compressed replies: ``content-encoding`` gzip, deflate (zlib-wrapped, or raw as some servers send it)
and br, decoded as the body arrives, streams included.

aicy announces what it can read (:data:`ACCEPT_ENCODING`, as the OpenAI SDK does), but a server may compress
a reply it was not asked to; whatever the reply says is decoded, and a coding aicy cannot read (``zstd``,
``compress``) is refused as a failure of the channel, never passed on as garbage. Decoded output comes in
pieces of at most :data:`PIECE` bytes, so a small compressed read cannot become gigabytes in memory at once
(the caller caps the total).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

try:
    import brotli
except ImportError:  # pragma: no cover - a dependency; without it br is refused like any unknown coding
    brotli = None

ACCEPT_ENCODING = "gzip, deflate, br" if brotli is not None else "gzip, deflate"
PIECE = 1 << 20
MAX_CODINGS = 3  # ``gzip, br`` is legal; a long chain is an attack, not a reply


class DecodingError(Exception):
    """The body cannot be decoded: an unknown coding, or compressed data that is corrupt or cut short."""


class Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]:
        """The output ``data`` completes, in pieces of at most PIECE bytes."""
        ...

    def finish(self) -> bytes:
        """What is left at the end of the body; DecodingError if the compressed data ended early."""
        ...


class _Zlib:
    """gzip (several members allowed) or deflate."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.wbits = 16 + zlib.MAX_WBITS if name == "gzip" else zlib.MAX_WBITS
        self.inflater = zlib.decompressobj(self.wbits)
        self.started = False  # some compressed data arrived
        self.raw_fallback = name == "deflate"  # still allowed to switch to raw deflate (first bytes only)

    def decode(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                piece = self.inflater.decompress(data, PIECE)
            except zlib.error as exc:
                if self.raw_fallback and not self.started:
                    self.raw_fallback = False
                    self.wbits = -zlib.MAX_WBITS
                    self.inflater = zlib.decompressobj(self.wbits)
                    continue
                raise DecodingError(f"the {self.name} body is corrupt: {exc}") from None
            self.started = True
            self.raw_fallback = False
            if piece:
                yield piece
            if self.inflater.unconsumed_tail:
                data = self.inflater.unconsumed_tail
            elif self.inflater.eof and self.inflater.unused_data and self.name == "gzip":
                data = self.inflater.unused_data  # the next gzip member
                self.inflater = zlib.decompressobj(self.wbits)
            else:
                data = b""

    def finish(self) -> bytes:
        if not self.started:
            return b""
        try:
            tail = self.inflater.flush()
        except zlib.error as exc:
            raise DecodingError(f"the {self.name} body is corrupt: {exc}") from None
        if not self.inflater.eof:
            raise DecodingError(f"the {self.name} body ended before its compressed data did")
        return tail


class _Brotli:
    def __init__(self) -> None:
        self.decompressor = brotli.Decompressor()
        self.started = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self.started = True
        try:
            piece = self.decompressor.process(data, output_buffer_limit=PIECE)
            while True:
                if piece:
                    yield piece
                if self.decompressor.can_accept_more_data():
                    return
                piece = self.decompressor.process(b"", output_buffer_limit=PIECE)
        except brotli.error as exc:
            raise DecodingError(f"the br body is corrupt: {exc}") from None

    def finish(self) -> bytes:
        if self.started and not self.decompressor.is_finished():
            raise DecodingError("the br body ended before its compressed data did")
        return b""


class _Chain:
    """Codings applied one after the other (``content-encoding: gzip, br``), undone in reverse order."""

    def __init__(self, decoders: list[Decoder]) -> None:
        self.decoders = decoders

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self.decoders):
            if data:
                yield data
            return
        for piece in self.decoders[index].decode(data):
            yield from self._through(index + 1, piece)

    def finish(self) -> bytes:
        out: list[bytes] = []
        for index, decoder in enumerate(self.decoders):  # each tail goes through the decoders after it
            out.extend(self._through(index + 1, decoder.finish()))
        return b"".join(out)


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """The decoder a reply's ``content-encoding`` needs (None: the body is as sent)."""
    if not content_encoding:
        return None
    names = [n.strip().lower() for n in content_encoding.split(",")]
    names = [n for n in names if n and n != "identity"]
    if not names:
        return None
    if len(names) > MAX_CODINGS:
        raise DecodingError(f"the reply is encoded {len(names)} times over ({content_encoding!r})")
    decoders: list[Decoder] = []
    for name in reversed(names):
        if name in ("gzip", "x-gzip"):
            decoders.append(_Zlib("gzip"))
        elif name == "deflate":
            decoders.append(_Zlib("deflate"))
        elif name == "br" and brotli is not None:
            decoders.append(_Brotli())
        else:
            raise DecodingError(f"the reply is encoded as {name!r}, which aicy cannot decode")
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)
