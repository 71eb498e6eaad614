"""Channels: the upstream backends an operator configures (pure data; persistence is in storage, the
dialect rewrite of a request body in upstream)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from aicy.types import WireApi


@dataclass(frozen=True, slots=True)
class Channel:
    """An OpenAI-compatible upstream.

    ``models`` maps a catalog model id to the name the upstream knows it by (often the same).
    ``capacity`` is the most requests in flight at once (None: unlimited). ``timeout`` bounds the wait for
    the first byte and each later read; ``connect_timeout`` waiting for a connection and opening it;
    ``write_timeout`` a request the upstream takes none of; ``total_timeout`` (None: none) a whole exchange,
    to the reply's last byte. Two dialect settings for Chat upstreams that predate parts of the
    API: ``max_tokens_field`` is how the output limit is spelled, ``json_schema_style`` is ``json_schema``
    (OpenAI) or ``json_object_schema`` (llama-cpp-python's ``{"type": "json_object", "schema": …}``).

    ``proxy``: the proxy to reach the upstream through (``http://``, ``https://``, ``socks5://``,
    ``socks5h://``, credentials in the URL; sealed at rest and masked when shown), ``"direct"`` for none,
    or None for the environment's (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``). TLS: ``tls_ca_file``
    (PEM authorities that replace the system's), ``tls_cert_file``/``tls_key_file`` (a client certificate),
    and ``tls_insecure_skip_verify``, which checks nothing and is flagged as unsafe wherever it is shown.
    ``probe_every_seconds``: opt in to scheduled probes (``aicy.serving.probes``) by the running server.
    """

    name: str
    base_url: str
    wire_api: WireApi = "chat"
    api_keys: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    capacity: int | None = None
    timeout: float = 600.0
    connect_timeout: float = 10.0
    write_timeout: float = 60.0
    total_timeout: float | None = 3600.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    max_tokens_field: str = "max_completion_tokens"
    json_schema_style: str = "json_schema"
    enabled: bool = True
    proxy: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_insecure_skip_verify: bool = False
    probe_every_seconds: float | None = None  # the server runs the probe suite this often (None: never)

    def upstream_model(self, model_id: str) -> str:
        return self.models.get(model_id) or model_id

    def to_json(self, *, reveal_keys: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["api_keys"] = list(self.api_keys) if reveal_keys else [_mask(k) for k in self.api_keys]
        if self.proxy and not reveal_keys:
            data["proxy"] = mask_url_credentials(self.proxy)
        return data

    def warnings(self) -> list[str]:
        """What is unsafe about these settings, for the admin API and the CLI to show."""
        found = []
        if self.tls_insecure_skip_verify:
            found.append(
                "UNSAFE: tls_insecure_skip_verify is on: the upstream's certificate is not checked, so "
                "anyone on the path can read and change the traffic, API keys included"
            )
        if self.proxy and self.proxy.lower().startswith("http://") and "@" in self.proxy:
            found.append("the proxy's credentials travel unencrypted (an http:// proxy)")
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["api_keys"] = tuple(known.get("api_keys") or ())
        return cls(**known)


def _mask(key: str) -> str:
    return key[:3] + "…" + key[-4:] if len(key) > 10 else "…"


def mask_url_credentials(url: str) -> str:
    """``scheme://user:password@host:port`` shown as ``scheme://…:…@host:port`` (a URL without credentials
    as it is; one that cannot be parsed, as ``…``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "…"
    if "@" not in parts.netloc:
        return url if "@" not in url else "…"
    userinfo, _, hostport = parts.netloc.rpartition("@")
    masked = "…:…" if ":" in userinfo else "…"
    return parts._replace(netloc=f"{masked}@{hostport}").geturl()


def url_credentials(url: str | None) -> tuple[str, ...]:
    """The user name and password of a URL (percent-decoded and as written), for the scrubber."""
    if not url:
        return ()
    try:
        parts = urlsplit(url)
    except ValueError:
        return (url,)
    found = []
    for value in (parts.username, parts.password):
        if value:
            found += [value, unquote(value)]
    return tuple(found)
