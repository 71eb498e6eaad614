"""Secrets out of upstream text before it leaves aicy.

Some upstreams (proxies, self-hosted servers) echo the request they received, ``Authorization`` header
included, in their error messages. Everything an upstream says that aicy passes on or logs (error replies
and their code and param, in-band stream errors, a redirect's location, failure reasons) goes through a
:class:`Scrubber` first. It replaces with ``[redacted]``:

- the known secrets: every channel's API keys, extra header values and proxy credentials (one scrubber
  is shared by every channel's backend, so an upstream that echoes another channel's key is covered too);
- anything shaped like a credential: ``Bearer <token>``, the values of ``authorization``, ``api_key``,
  ``token``, ``secret``, ``password`` (when they look random: ordinary words are left alone), ``sk-…`` and
  other vendors' key formats, JWTs, and the ``user:password@`` of a URL.

Only error paths call it: ordinary payloads never pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aicy.domain.channels import Channel, url_credentials
from aicy.errors import AicyError

REDACTED = "[redacted]"
MIN_SECRET = 8  # a shorter "secret" (``EMPTY``, ``none``) protects nothing; replacing it would mangle text
NOT_SECRET_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "anthropic-beta",
        "anthropic-version",
        "content-type",
        "http-referer",
        "openai-beta",
        "origin",
        "referer",
        "user-agent",
        "x-title",
    }
)

_TOKEN = r"[A-Za-z0-9._~+/=\-]+"
# Vendors' key formats, wherever they appear.
_KEY_FORMATS = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"  # OpenAI, aicy (sk-aicy-…), Anthropic (sk-ant-…), many proxies
    r"|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|pplx-[A-Za-z0-9]{20,}"
    r"|nvapi-[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{35}|AKIA[0-9A-Z]{16}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"  # a JWT
    r")"
)
# ``Bearer <token>`` anywhere, and the value after a credential's name (``"authorization": "Basic …"``,
# ``api_key=…``, ``token: …``, ``invalid key abc…``), optionally after an auth scheme.
_NAMED = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(?P<name>"
    r"(?:proxy-)?authorization|bearer|(?:x-)?api[_\-]?key|apikey|(?:access|auth|refresh|id|session)[_\-]?token"
    r"|client[_\-]?secret|secret[_\-]?key|secret|token|key|password|passwd"
    r")(?![A-Za-z0-9_])"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?|\s+)"
    r"(?P<scheme>(?:bearer|basic|token|digest)\s+)?"
    rf"(?P<value>{_TOKEN})"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@\"']+:[^/\s@\"']+@")
_STRONG_CONTEXT = frozenset({"authorization", "proxy-authorization", "bearer"})


def _looks_secret(value: str, strong: bool) -> bool:
    """Whether a value after a credential's name is a secret rather than a word of a sentence.

    After ``Bearer``/``authorization`` anything of 8+ characters but a plain (lower- or title-case) word
    is; after ``key``, ``token`` and the like, a 12+ character mix of letters and digits, or a 20+
    character mixed-case or symbol-bearing string (hex, base64, url-safe tokens).
    """
    value = value.rstrip(".,;:)")
    if len(value) < MIN_SECRET:
        return False
    if strong:
        return not (value.isalpha() and (value.islower() or value.istitle()))
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    if len(value) >= 12 and has_digit and has_alpha:
        return True
    if len(value) >= 20:
        return not value.isalpha() or (not value.islower() and not value.isupper())
    return False


def _named(match: re.Match[str]) -> str:
    name = match["name"].lower()
    strong = name in _STRONG_CONTEXT or match["scheme"] is not None
    value = match["value"]
    if not _looks_secret(value, strong):
        return match[0]
    tail = value[len(value.rstrip(".,;:)")) :]  # sentence punctuation stays
    return f"{match['name']}{match['sep']}{match['scheme'] or ''}{REDACTED}{tail}"


def channel_secrets(channel: Channel) -> set[str]:
    """What of a channel's settings is secret: its keys, its extra headers' values (but the few
    well-known headers that never carry one) and its proxy's user name and password."""
    values = set(channel.api_keys)
    values.update(url_credentials(channel.proxy))
    values.update(v for k, v in channel.extra_headers.items() if k.lower() not in NOT_SECRET_HEADERS)
    return {v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET}


class Scrubber:
    """Known secrets and credential shapes out of text; one instance is shared by all channels."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Remember more secrets (a channel's, when its backend is built); secrets are never forgotten."""
        new = {s for s in secrets if len(s) >= MIN_SECRET} - self._secrets
        if new:
            self._secrets |= new
            self._known = None

    def _known_pattern(self) -> re.Pattern[str] | None:
        if self._known is None and self._secrets:
            variants = set()
            for secret in self._secrets:
                variants.add(secret)
                variants.add(secret.strip())
            ordered = sorted((v for v in variants if len(v) >= MIN_SECRET), key=len, reverse=True)
            self._known = re.compile("|".join(re.escape(v) for v in ordered))
        return self._known

    def text(self, text: str) -> str:
        known = self._known_pattern()
        if known is not None:
            text = known.sub(REDACTED, text)
        text = _KEY_FORMATS.sub(REDACTED, text)
        text = _NAMED.sub(_named, text)
        return _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)

    def json(self, value: Any) -> Any:
        """A copy of a JSON value with every string (keys included) scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value

    def error(self, error: AicyError) -> AicyError:
        """``error`` with its message, code, param and type scrubbed, in place."""
        error.message = self.text(error.message)
        error.args = (error.message,)
        if error.code is not None:
            error.code = self.text(error.code)
        if error.param is not None:
            error.param = self.text(error.param)
        scrubbed_type = self.text(error.type)
        if scrubbed_type != error.type:
            error.type = scrubbed_type
        return error

    def payload(self, payload: dict[str, Any]) -> None:
        """An upstream's in-band error, in place: a Chat ``{"error": …}`` chunk or body, a Responses
        ``error`` event (its fields nested or at the top), or a failed response's ``error``."""
        if payload.get("type") == "error":
            for name, value in list(payload.items()):
                if name not in ("type", "sequence_number"):
                    payload[name] = self.json(value)
        elif "error" in payload:
            payload["error"] = self.json(payload["error"])
        inner = payload.get("response")
        if isinstance(inner, dict) and inner.get("error") is not None:
            inner["error"] = self.json(inner["error"])
