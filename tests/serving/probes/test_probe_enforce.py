"""``AICY_PROBE_ENFORCE=true``: a channel whose latest probe run failed a check leaves rotation, and the
customers' requests go to the channel that passed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.fakes.probe_upstreams import ProbeUpstream
from tests.fakes.threaded import ThreadedApp
from tests.serving.probes.test_probe_run import aicy_cli
from tests.support import AicyProcess


@pytest.fixture
def upstreams() -> Iterator[tuple[ProbeUpstream, ProbeUpstream, ThreadedApp, ThreadedApp]]:
    cheap, faithful = ProbeUpstream("other_tokenizer"), ProbeUpstream("faithful")
    servers = cheap.serve(), faithful.serve()
    yield cheap, faithful, *servers
    for server in servers:
        server.stop()


def test_a_failing_channel_leaves_rotation(
    tmp_path: Path, upstreams: tuple[ProbeUpstream, ProbeUpstream, ThreadedApp, ThreadedApp]
) -> None:
    cheap, faithful, cheap_server, faithful_server = upstreams
    server = AicyProcess(
        tmp_path,
        extra_env={
            "AICY_PROBE_ENFORCE": "true",
            "AICY_ENGINE_ENABLED": "false",
            "AICY_CATALOG_RELOAD_SECONDS": "0.2",
        },
    )
    # the cheap channel is preferred (higher priority) until a probe shows what it is
    server.cli(
        "channels",
        "add",
        "--name",
        "cheap",
        "--base-url",
        cheap_server.base_url,
        "--models",
        "gpt-5",
        "--priority",
        "10",
    )
    server.cli(
        "channels", "add", "--name", "faithful", "--base-url", faithful_server.base_url, "--models", "gpt-5"
    )
    server.start()
    try:
        key = server.new_key("probe-customer")
        server.cli("accounts", "topup", "probe-customer", "10")
        client = OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=30)

        def ask() -> None:
            client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "capital?"}])

        ask()
        assert len(cheap.requests) == 1 and not faithful.requests
        done = aicy_cli(server, "probe", "run")
        assert done.returncode == 1 and "fingerprint failed" in done.stdout
        cheap.requests.clear()
        faithful.requests.clear()
        deadline = time.monotonic() + 30
        while True:  # the server picks up the verdict at its next catalog reload
            ask()
            if faithful.requests:
                break
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        before = len(cheap.requests)
        for _ in range(3):
            ask()
        assert len(cheap.requests) == before and len(faithful.requests) == 4
        assert "channel cheap is out of rotation" in server.log()
    finally:
        server.stop()
