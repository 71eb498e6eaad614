"""Proxy settings as data: NO_PROXY matching, the environment's proxies, masking and scrubbing."""

from __future__ import annotations

import pytest

from aicy.domain.channels import Channel, mask_url_credentials
from aicy.upstream.proxy import EnvProxies, NoProxy, parse_proxy
from aicy.upstream.scrub import Scrubber, channel_secrets


@pytest.mark.parametrize(
    ("rule", "host", "port", "matches"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "example.com", 443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("10.0.0.0/8", "10.example.com", 80, False),
        ("::1", "::1", 80, True),
        ("fd00::/8", "fd00::2", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("127.0.0.1:8000", "127.0.0.1", 8000, True),
        ("127.0.0.1:8000", "127.0.0.1", 9000, False),
        ("bücher.example", "xn--bcher-kva.example", 443, True),
        ("*", "anything.at.all", 1, True),
        ("", "example.com", 443, False),
        ("foo.test, , example.com", "example.com", 443, True),
    ],
)
def test_no_proxy(rule: str, host: str, port: int, matches: bool) -> None:
    assert NoProxy(rule).matches(host, port) is matches


def test_environment_proxies() -> None:
    env = EnvProxies(http="proxy.corp:3128", https="socks5h://u:p@s:1080", no_proxy="internal.test")
    assert env.proxy_for("http", "api.test", 80) == parse_proxy("http://proxy.corp:3128")
    https = env.proxy_for("https", "api.test", 443)
    assert https is not None and (https.scheme, https.username) == ("socks5h", "u")
    assert env.proxy_for("https", "a.internal.test", 443) is None
    assert EnvProxies().proxy_for("https", "api.test", 443) is None
    with pytest.raises(ValueError, match="HTTP_PROXY") as caught:
        EnvProxies(http="socks4://u:hunter2hunter2@h:1")
    assert "hunter2" not in str(caught.value)


def test_proxy_credentials_are_masked_and_scrubbed() -> None:
    url = "http://user-name-1:pass%2Fword-123@proxy.test:3128"
    assert mask_url_credentials(url) == "http://…:…@proxy.test:3128"
    assert mask_url_credentials("socks5://proxy.test:1080") == "socks5://proxy.test:1080"
    channel = Channel("c", "http://x/v1", proxy=url)
    assert channel.to_json()["proxy"] == "http://…:…@proxy.test:3128"
    assert channel.to_json(reveal_keys=True)["proxy"] == url
    scrub = Scrubber(channel_secrets(channel))
    said = scrub.text("proxy refused user-name-1 with pass/word-123 and pass%2Fword-123")
    assert "user-name-1" not in said and "word-123" not in said
    assert channel.warnings() == ["the proxy's credentials travel unencrypted (an http:// proxy)"]
