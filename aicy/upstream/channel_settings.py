"""What a channel's settings mean for the HTTP client, and whether they can be used at all: shared by the
HTTP backend (which fails a request on settings that cannot be sent) and the operators' input rules (which
refuse them up front)."""

from __future__ import annotations

import re

from aicy.domain.channels import Channel
from aicy.types import WireApi
from aicy.upstream.http1 import Route, SettingsError, TlsOptions, split_url, tls_context
from aicy.upstream.proxy import DIRECT, parse_proxy

PATHS: dict[WireApi, str] = {"chat": "/chat/completions", "responses": "/responses"}
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but HTAB
SET_BY_AICY = frozenset({"host", "content-length", "transfer-encoding"})  # an extra one breaks the framing


def unusable_settings(channel: Channel) -> str | None:
    """Why a channel's settings cannot go into an HTTP request at all (None: they can). Such a channel is
    refused when it is added; one stored before that fails each request as a channel failure with this
    reason (which names the setting, never its value)."""
    try:
        split_url(channel.base_url.rstrip("/") + PATHS[channel.wire_api])
    except ValueError:
        return "unusable channel settings: the base URL is not an http(s) URL"
    if channel.proxy and channel.proxy != DIRECT:
        try:
            parse_proxy(channel.proxy)
        except ValueError as exc:
            return f"unusable channel settings: {exc}"
    for name, value in channel.extra_headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            return f"unusable channel settings: extra header {name!r} is not a valid header name"
        if name.lower() in SET_BY_AICY:
            return f"unusable channel settings: extra header {name!r} is set by aicy itself"
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            return f"unusable channel settings: the value of extra header {name!r} has a line break"
        if HEADER_CONTROL.search(value):
            return f"unusable channel settings: the value of extra header {name!r} has control characters"
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return (
                f"unusable channel settings: the value of extra header {name!r} has characters an HTTP "
                "header cannot carry (not latin-1)"
            )
    for number, key in enumerate(channel.api_keys, 1):
        if not isinstance(key, str) or not key.isascii() or not key.isprintable():
            return (
                f"unusable channel settings: API key #{number} has characters an HTTP header cannot "
                "carry (non-ASCII, line breaks or other control characters)"
            )
    return None


def channel_route(channel: Channel) -> Route:
    """How the client reaches the channel's upstream (its settings already found usable)."""
    proxy = channel.proxy
    own_encoding = any(name.lower() == "accept-encoding" for name in channel.extra_headers)
    return Route(
        proxy=parse_proxy(proxy) if proxy and proxy != DIRECT else None,
        direct=proxy == DIRECT,
        tls=TlsOptions(
            channel.tls_ca_file or None,
            channel.tls_cert_file or None,
            channel.tls_key_file or None,
            verify=not channel.tls_insecure_skip_verify,
        ),
        accept_encoding=not own_encoding,
    )


def proxy_problem(proxy: str) -> str | None:
    """Why a channel's ``proxy`` cannot be used (None: it can; ``direct`` always can); never quotes it."""
    if proxy == DIRECT:
        return None
    try:
        parse_proxy(proxy)
    except ValueError as exc:
        return str(exc)
    return None


def tls_problem(ca_file: str | None, cert_file: str | None, key_file: str | None) -> str | None:
    """Why these TLS files cannot be used (None: they load)."""
    if key_file and not cert_file:
        return "tls_key_file needs tls_cert_file (the certificate it belongs to)"
    try:
        tls_context(TlsOptions(ca_file, cert_file, key_file))
    except SettingsError as exc:
        return str(exc)
    return None
