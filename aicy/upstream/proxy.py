"""Proxies in front of upstreams: a channel's own ``proxy`` URL, or the environment's ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY`` (read by :mod:`aicy.settings`, handed down here) for channels without one.

Kinds: ``http://`` (plain requests in absolute form, ``CONNECT`` tunnels for ``https`` upstreams),
``https://`` (the same over TLS to the proxy), ``socks5://`` (aicy resolves the upstream's name) and
``socks5h://`` (the proxy resolves it). Credentials go in the URL (``http://user:pass@host:port``,
percent-encoded). Nothing here ever puts a credential into a message: a proxy is named by its kind, host and
port only (:meth:`Proxy.where`).
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = ("http", "https", "socks5", "socks5h")
DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
DIRECT = "direct"  # a channel's ``proxy`` that means: no proxy, whatever the environment says


@dataclass(frozen=True, slots=True)
class Proxy:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def tunnels_http(self) -> bool:
        """Whether plain-HTTP upstreams go through a tunnel (SOCKS) rather than as absolute-form requests."""
        return self.scheme in ("socks5", "socks5h")

    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme} proxy {host}:{self.port}"

    def basic_authorization(self) -> str | None:
        """The ``proxy-authorization`` value for an HTTP proxy, when it has credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_proxy(url: str, *, default_scheme: str | None = None) -> Proxy:
    """A proxy URL, or ValueError saying what is wrong with it (never quoting its credentials).

    ``default_scheme`` is taken for a URL without one (``proxy.corp:3128`` in ``HTTP_PROXY``, as curl does).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the proxy URL is empty")
    text = url.strip()
    if "://" not in text and default_scheme is not None:
        text = f"{default_scheme}://{text}"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("the proxy URL has spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("the proxy URL's port is not a number from 0 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("the proxy URL must start with http://, https://, socks5:// or socks5h://")
    host = parts.hostname
    if not host:
        raise ValueError("the proxy URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the proxy URL must be scheme://[user:password@]host[:port], without a path")
    try:
        host = ascii_host(host)
    except ValueError as exc:
        raise ValueError(f"the proxy URL's host: {exc}") from None
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    too_long = username is not None and max(len(username.encode()), len((password or "").encode())) > 255
    if scheme.startswith("socks5") and too_long:
        raise ValueError("a SOCKS5 proxy's user name and password are at most 255 bytes each")
    return Proxy(scheme, host, port or DEFAULT_PORTS[scheme], username or None, password)


def ascii_host(host: str) -> str:
    """A host name as it goes on the wire: lower case, internationalised names in their ``xn--`` form
    (IDNA 2008 with UTS #46 mapping, as browsers and curl do). IP literals pass unchanged."""
    host = host.lower()
    if host.isascii():
        return host
    import idna  # only for non-ASCII names

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{host!r} is not a valid internationalised domain name ({exc})") from None


class NoProxy:
    """``NO_PROXY``: comma-separated host names (``example.com`` also matches its subdomains; a leading
    ``.`` or ``*.`` is the same), IP addresses, CIDR ranges (``10.0.0.0/8``), each optionally with
    ``:port``; ``*`` alone matches everything."""

    def __init__(self, text: str | None) -> None:
        self.everything = False
        self.names: list[tuple[str, int | None]] = []
        self.networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
        for raw in (text or "").replace(" ", ",").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self.everything = True
                continue
            entry, port = _split_port(entry)
            entry = entry.removeprefix("*.").lstrip(".").strip("[]")
            try:
                self.networks.append((ipaddress.ip_network(entry, strict=False), port))
            except ValueError:
                try:
                    self.names.append((ascii_host(entry), port))
                except ValueError:
                    continue  # an entry no host can match

    def matches(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            return any(address in net and want in (None, port) for net, want in self.networks)
        return any(
            (host == name or host.endswith("." + name)) and want in (None, port) for name, want in self.names
        )


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port
        address, _, rest = entry[1:].partition("]")
        return address, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


class EnvProxies:
    """The environment's proxies: ``https_proxy`` for ``https`` upstreams, ``http_proxy`` for ``http``
    ones, neither for a host ``no_proxy`` matches. Bad URLs raise ValueError naming the variable."""

    def __init__(
        self, http: str | None = None, https: str | None = None, no_proxy: str | None = None
    ) -> None:
        self.http = _env_proxy("HTTP_PROXY", http)
        self.https = _env_proxy("HTTPS_PROXY", https)
        self.no_proxy = NoProxy(no_proxy)

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.no_proxy.matches(host, port):
            return None
        return proxy


def _env_proxy(name: str, value: str | None) -> Proxy | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_proxy(value, default_scheme="http")
    except ValueError as exc:
        raise ValueError(f"{name} is not a usable proxy URL: {exc}") from None
