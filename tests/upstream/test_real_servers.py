"""The upstream client and HTTP channels against independent servers: Nginx as a TLS upstream (test CA from
trustme) that compresses its replies, Nginx asking for a client certificate, tinyproxy (HTTP proxy with
basic auth: CONNECT tunnels and absolute-form requests), microsocks (SOCKS5 with user and password), and
tinyproxy behind Nginx's TLS (an ``https://`` proxy, so TLS inside TLS). Behind them all, the fault upstream.
Each test runs on asyncio's loop and on uvloop (the loop ``aicy serve`` runs on)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
import uvloop
from openai import OpenAI

from aicy.bootstrap import upstream_client
from aicy.domain.channels import Channel
from aicy.settings import Settings
from aicy.upstream.dial import Address, Resolver
from aicy.upstream.failures import UpstreamFailure
from aicy.upstream.http1 import Http1Client, Route, TlsOptions
from aicy.upstream.openai_http import HttpBackend
from aicy.upstream.proxy import parse_proxy
from tests.fakes.fault_upstream import FaultUpstream
from tests.support import AicyProcess, Operator
from tests.upstream.servers import (
    PROXY_PASSWORD,
    PROXY_USER,
    Certificates,
    Daemon,
    Nginx,
    microsocks,
    nginx,
    tinyproxy,
)

T = TypeVar("T")
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
WRONG = "wrong-password-123"


@pytest.fixture(scope="module")
def fault() -> Iterator[FaultUpstream]:
    server = FaultUpstream("behind-proxies").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("servers"))


@pytest.fixture(scope="module")
def certs(folder: Path) -> Certificates:
    return Certificates(folder / "certs")


@pytest.fixture(scope="module")
def http_proxy(folder: Path) -> Iterator[Daemon]:
    daemon = tinyproxy(folder)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def socks_proxy(folder: Path) -> Iterator[Daemon]:
    daemon = microsocks(folder)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def web(folder: Path, certs: Certificates, fault: FaultUpstream, http_proxy: Daemon) -> Iterator[Nginx]:
    server = nginx(folder / "nginx", certs, fault.port, proxy_port=http_proxy.port)
    yield server
    server.daemon.stop()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[T]], T]:
    def runner(work: Awaitable[T]) -> T:
        if request.param == "uvloop":
            return uvloop.run(work)  # type: ignore[arg-type]
        return asyncio.run(work)  # type: ignore[arg-type]

    return runner


def _channel(base_url: str, **fields: Any) -> Channel:
    return Channel("real", base_url, models={"m": "m"}, api_keys=("sk-test-key-123456",), **fields)


def _proxy(scheme: str, port: int, password: str = PROXY_PASSWORD, host: str = "127.0.0.1") -> str:
    return f"{scheme}://{PROXY_USER}:{password}@{host}:{port}"


async def _chat(channel: Channel, client: Http1Client | None = None, streaming: bool = False) -> Any:
    """One Chat request through an HttpBackend of ``channel``: the reply's JSON, or its payloads."""
    own = client is None
    client = client or Http1Client()
    try:
        backend = HttpBackend(channel, client)
        reply = await backend.relay({**CHAT, "stream": streaming}, streaming=streaming)
        try:
            if streaming:
                return [payload async for payload in reply.events()]
            return await reply.json()
        finally:
            await reply.close()
    finally:
        if own:
            await client.close()


async def _failure(channel: Channel) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as caught:
        await _chat(channel)
    return caught.value


def _text(payloads: list[dict[str, Any]]) -> str:
    return "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads if p.get("choices"))


def test_nginx_compresses_and_the_client_decodes(
    web: Nginx, fault: FaultUpstream, run: Callable[[Awaitable[Any]], Any]
) -> None:
    """Nginx gzips JSON and event streams when asked (aicy asks); replies and streams arrive decoded."""
    fault.queue()

    async def work() -> tuple[str | None, dict[str, Any], list[dict[str, Any]]]:
        client = Http1Client()
        try:
            raw = await client.request(
                "POST", f"http://127.0.0.1:{web.plain}/v1/chat/completions", orjson.dumps(CHAT)
            )
            encoding = raw.headers.get("content-encoding")
            await raw.read()
            raw.release()
            channel = _channel(f"http://127.0.0.1:{web.plain}/v1")
            return encoding, await _chat(channel, client), await _chat(channel, client, streaming=True)
        finally:
            await client.close()

    encoding, body, stream = run(work())
    assert encoding == "gzip", "nginx compressed the reply"
    assert body["choices"][0]["message"]["content"] == "Hello from the fault upstream."
    assert _text(stream) == "Hello from the fault upstream."


def test_tls_upstream_with_the_channel_ca_file(
    web: Nginx, certs: Certificates, run: Callable[[Awaitable[Any]], Any]
) -> None:
    base = f"https://localhost:{web.tls}/v1"
    trusted = _channel(base, tls_ca_file=str(certs.ca_file))
    assert run(_chat(trusted))["choices"][0]["message"]["content"].startswith("Hello")
    assert _text(run(_chat(trusted, streaming=True))) == "Hello from the fault upstream."
    refused = run(_failure(_channel(base)))
    assert "CERTIFICATE_VERIFY_FAILED" in refused.reason
    unchecked = _channel(base, tls_insecure_skip_verify=True)
    assert run(_chat(unchecked))["choices"][0]["message"]["content"].startswith("Hello")
    assert any("UNSAFE" in w for w in unchecked.warnings())


def test_a_missing_tls_file_is_a_fatal_channel_failure(
    web: Nginx, folder: Path, run: Callable[[Awaitable[Any]], Any]
) -> None:
    failure = run(_failure(_channel(f"https://localhost:{web.tls}/v1", tls_ca_file=str(folder / "gone.pem"))))
    assert failure.auth and "CA file" in failure.reason


def test_client_certificate(web: Nginx, certs: Certificates, run: Callable[[Awaitable[Any]], Any]) -> None:
    """Nginx asks for a client certificate signed by the test CA: with the channel's it answers."""
    url = f"https://localhost:{web.mtls}/v1/chat/completions"

    async def status(options: TlsOptions) -> int:
        client = Http1Client()
        try:
            reply = await client.request("POST", url, orjson.dumps(CHAT), route=Route(tls=options))
            await reply.read()
            reply.release()
            return reply.status
        finally:
            await client.close()

    ca = str(certs.ca_file)
    assert run(status(TlsOptions(ca))) == 400  # nginx: "No required SSL certificate was sent"
    assert run(status(TlsOptions(ca, str(certs.client_cert), str(certs.client_key)))) == 200


def _proxy_log(folder: Path) -> str:
    return (folder / "tinyproxy.log").read_text(errors="replace")


def test_through_tinyproxy(
    web: Nginx, fault: FaultUpstream, http_proxy: Daemon, certs: Certificates, folder: Path, run: Any
) -> None:
    """A CONNECT tunnel to the TLS upstream; absolute-form requests to a plain one; both authenticated."""
    proxy = _proxy("http", http_proxy.port)
    tls = _channel(f"https://localhost:{web.tls}/v1", proxy=proxy, tls_ca_file=str(certs.ca_file))
    before = _proxy_log(folder).count(f"CONNECT localhost:{web.tls}")
    assert _text(run(_chat(tls, streaming=True))) == "Hello from the fault upstream."
    assert _proxy_log(folder).count(f"CONNECT localhost:{web.tls}") > before
    plain = _channel(fault.base_url, proxy=proxy)
    fault.requests.clear()
    assert run(_chat(plain))["choices"][0]["message"]["content"].startswith("Hello")
    assert fault.requests, "the fault upstream was reached"
    assert f"127.0.0.1:{fault.port}" in _proxy_log(folder)


@pytest.mark.parametrize("target", ["tls", "plain"])
def test_wrong_proxy_credentials_take_the_channel_out(
    web: Nginx, fault: FaultUpstream, http_proxy: Daemon, certs: Certificates, target: str, run: Any
) -> None:
    proxy = _proxy("http", http_proxy.port, password=WRONG)
    base = f"https://localhost:{web.tls}/v1" if target == "tls" else fault.base_url
    failure = run(_failure(_channel(base, proxy=proxy, tls_ca_file=str(certs.ca_file))))
    assert failure.auth, "bad proxy credentials never get better: out of rotation at once"
    assert ("407" in failure.reason or "401" in failure.reason) and WRONG not in failure.reason


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_through_microsocks(
    web: Nginx, fault: FaultUpstream, socks_proxy: Daemon, certs: Certificates, scheme: str, run: Any
) -> None:
    proxy = _proxy(scheme, socks_proxy.port)
    tls = _channel(f"https://localhost:{web.tls}/v1", proxy=proxy, tls_ca_file=str(certs.ca_file))
    assert _text(run(_chat(tls, streaming=True))) == "Hello from the fault upstream."
    fault.requests.clear()
    assert run(_chat(_channel(fault.base_url, proxy=proxy)))["choices"][0]["message"]["content"]
    assert fault.requests
    wrong = _channel(fault.base_url, proxy=_proxy(scheme, socks_proxy.port, password=WRONG))
    failure = run(_failure(wrong))
    assert failure.auth and "credentials" in failure.reason and WRONG not in failure.reason


def test_https_proxy_tls_inside_tls(
    web: Nginx, certs: Certificates, folder: Path, run: Callable[[Awaitable[Any]], Any]
) -> None:
    """tinyproxy behind Nginx's TLS: TLS to the proxy, CONNECT, then TLS to the upstream inside it."""
    assert web.tls_proxy is not None
    proxy = _proxy("https", web.tls_proxy, host="localhost")
    channel = _channel(f"https://localhost:{web.tls}/v1", proxy=proxy, tls_ca_file=str(certs.ca_file))
    before = _proxy_log(folder).count("CONNECT localhost")
    assert _text(run(_chat(channel, streaming=True))) == "Hello from the fault upstream."
    assert run(_chat(channel))["choices"][0]["message"]["content"].startswith("Hello")
    assert _proxy_log(folder).count("CONNECT localhost") > before
    plain = _channel(f"http://127.0.0.1:{web.plain}/v1", proxy=proxy, tls_ca_file=str(certs.ca_file))
    assert run(_chat(plain))["choices"][0]["message"]["content"].startswith("Hello")


def test_environment_proxies_and_no_proxy(
    web: Nginx, fault: FaultUpstream, http_proxy: Daemon, certs: Certificates, folder: Path, run: Any
) -> None:
    """Channels without a proxy use HTTPS_PROXY / HTTP_PROXY (through the settings), but not for hosts
    NO_PROXY names, nor for a channel whose proxy is ``direct``."""
    proxy = _proxy("http", http_proxy.port)
    tls = _channel(f"https://localhost:{web.tls}/v1", tls_ca_file=str(certs.ca_file))
    by_address = _channel(f"https://127.0.0.1:{web.tls}/v1", tls_ca_file=str(certs.ca_file))

    def via_proxy(settings: Settings, channel: Channel) -> bool:
        marker = "CONNECT " + channel.base_url.split("/")[2]
        before = _proxy_log(folder).count(marker)

        async def work() -> None:
            client = upstream_client(settings)
            try:
                await _chat(channel, client)
            finally:
                await client.close()

        run(work())
        return _proxy_log(folder).count(marker) > before

    assert via_proxy(Settings(https_proxy=proxy), tls)
    assert via_proxy(Settings(https_proxy=proxy), by_address)
    assert not via_proxy(Settings(https_proxy=proxy, no_proxy="example.com, localhost"), tls)
    assert via_proxy(Settings(https_proxy=proxy, no_proxy=".example.com,127.0.0.0/8"), tls)
    assert not via_proxy(Settings(https_proxy=proxy, no_proxy=".example.com,127.0.0.0/8"), by_address)
    assert not via_proxy(Settings(https_proxy=proxy, no_proxy=f"localhost:{web.tls}"), tls)
    assert not via_proxy(Settings(https_proxy=proxy), replace(tls, proxy="direct"))
    assert not via_proxy(Settings(http_proxy=proxy), tls), "HTTP_PROXY is for http upstreams only"
    with pytest.raises(ValueError, match="HTTPS_PROXY"):
        upstream_client(Settings(https_proxy="ftp://nope"))


class Names(Resolver):
    """The system resolver, but for a few names of the test's own."""

    def __init__(self, names: dict[str, list[Address]]) -> None:
        super().__init__(ttl=30)
        self.names = names
        self.lookups: list[str] = []

    async def lookup(self, host: str, port: int) -> list[Address]:
        self.lookups.append(host)
        if host in self.names:
            return [(family, (address[0], port, *address[2:])) for family, address in self.names[host]]
        return await super().lookup(host, port)


def test_internationalised_name_over_tls(web: Nginx, certs: Certificates, run: Any) -> None:
    """``bücher.test`` goes out as ``xn--bcher-kva.test``: looked up, sent as the Host and TLS server name
    (the certificate names the xn-- form), once looked up for many requests."""
    resolver = Names({"xn--bcher-kva.test": [(socket.AF_INET, ("127.0.0.1", 0))]})
    channel = _channel(f"https://bücher.test:{web.tls}/v1", tls_ca_file=str(certs.ca_file))

    async def work() -> None:
        client = Http1Client(resolver=resolver)
        try:
            for _ in range(2):
                await _chat(channel, client)
            await _chat(replace(channel, name="again"), client)
        finally:
            await client.close()

    run(work())
    assert resolver.lookups == ["xn--bcher-kva.test"]  # the certificate names only the xn-- form


def test_proxy_urls_are_checked_without_echoing_credentials() -> None:
    for bad in ("ftp://u:secretpw@h:1", "http://u:secretpw@:1", "http://u:secretpw@h:99999", "http://h/x"):
        with pytest.raises(ValueError) as caught:
            parse_proxy(bad)
        assert "secretpw" not in str(caught.value)
    proxy = parse_proxy("socks5h://us%40er:p%3Ass@Proxy.Example:1081")
    parsed = (proxy.host, proxy.port, proxy.username, proxy.password)
    assert parsed == ("proxy.example", 1081, "us@er", "p:ss")
    assert parse_proxy("http://h").port == 80 and parse_proxy("socks5://h").port == 1080


def test_a_channel_through_a_proxy_end_to_end(
    operator: Operator,
    admin: httpx.Client,
    client: OpenAI,
    aicy: AicyProcess,
    fault: FaultUpstream,
    http_proxy: Daemon,
    folder: Path,
) -> None:
    """Through the admin API of a real aicy and the official SDK: the channel's proxy carries the request,
    is shown masked, sealed in the database, checked on input; unsafe TLS is flagged."""
    fault.queue()
    model = operator.model(f"proxied-{time.monotonic_ns()}")
    proxy = _proxy("http", http_proxy.port)
    operator.channel("proxied", fault.base_url, [model], proxy=proxy)
    shown = admin.get("/admin/channels/proxied").json()
    assert shown["proxy"] == f"http://…:…@127.0.0.1:{http_proxy.port}" and PROXY_PASSWORD not in str(shown)
    for _ in range(100):
        if model in {m.id for m in client.models.list()}:
            break
        time.sleep(0.05)
    before = _proxy_log(folder).count(f"127.0.0.1:{fault.port}")
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from the fault upstream."
    assert _proxy_log(folder).count(f"127.0.0.1:{fault.port}") > before, "it went through tinyproxy"
    patched = admin.patch("/admin/channels/proxied", json={"priority": 2})
    assert patched.status_code == 200 and patched.json()["proxy"] == shown["proxy"]
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from the fault upstream.", "the proxy survived a PATCH"
    database = sqlite3.connect(aicy.data_dir / "aicy.db")
    try:
        dump = "\n".join(database.iterdump())
    finally:
        database.close()
    assert "sealed_proxy" in dump and PROXY_PASSWORD not in dump

    bad = admin.post(
        "/admin/channels",
        json={"name": "bad-proxy", "base_url": fault.base_url, "proxy": f"ftp://u:{WRONG}@h"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "proxy" and WRONG not in bad.text
    missing = admin.post(
        "/admin/channels", json={"name": "bad-ca", "base_url": fault.base_url, "tls_ca_file": "/nope.pem"}
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "tls_ca_file"
    unsafe = {"tls_insecure_skip_verify": True, "enabled": False}
    operator.channel("unsafe", "https://127.0.0.1:9/v1", [model], **unsafe)
    warnings = admin.get("/admin/channels/unsafe").json()["warnings"]
    assert any(w.startswith("UNSAFE") for w in warnings)


def test_cli_channel_options(aicy: AicyProcess, http_proxy: Daemon) -> None:
    proxy = _proxy("socks5h", http_proxy.port)
    added = aicy.cli(
        *("channels", "add", "--name", "cli-proxied", "--base-url", "https://127.0.0.1:9/v1"),
        *("--models", "gpt-5", "--proxy", proxy, "--tls-insecure-skip-verify", "--disabled"),
        *("--write-timeout", "5", "--total-timeout", "120"),
    )
    try:
        assert "UNSAFE" in added.stderr and PROXY_PASSWORD not in added.stdout + added.stderr
        listing = aicy.cli("channels", "list").stdout
        assert f"socks5h://…:…@127.0.0.1:{http_proxy.port}" in listing and PROXY_PASSWORD not in listing
        assert "UNSAFE TLS" in listing
    finally:
        aicy.cli("channels", "remove", "cli-proxied")
