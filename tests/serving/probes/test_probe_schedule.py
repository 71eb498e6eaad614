"""Scheduled probes: the running server probes the channels that opt in (``probe_every_seconds``), again
and again, records the verdicts like a CLI run, and with ``AICY_PROBE_ENFORCE`` acts on them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.probe_upstreams import ProbeUpstream
from tests.fakes.threaded import ThreadedApp
from tests.support import AicyProcess


@pytest.fixture
def upstreams() -> Iterator[dict[str, tuple[ProbeUpstream, ThreadedApp]]]:
    started = {mode: (fake := ProbeUpstream(mode), fake.serve()) for mode in ("faithful", "other_tokenizer")}
    yield started
    for _, server in started.values():
        server.stop()


def test_the_server_probes_the_channels_that_opt_in(
    tmp_path: Path, upstreams: dict[str, tuple[ProbeUpstream, ThreadedApp]]
) -> None:
    server = AicyProcess(
        tmp_path,
        extra_env={
            "AICY_ENGINE_ENABLED": "false",
            "AICY_CATALOG_RELOAD_SECONDS": "0.2",
            "AICY_PROBE_ENFORCE": "1",
        },
    )
    for mode, (_, upstream) in upstreams.items():
        server.cli("channels", "add", "--name", mode, "--base-url", upstream.base_url, "--models", "gpt-5")
    server.cli("channels", "update", "other_tokenizer", '{"probe_every_seconds": 1}')
    server.cli("channels", "update", "faithful", '{"probe_every_seconds": 1}')
    server.start()
    try:
        admin_key = server.cli("keys", "create", "--admin", "--name", "ops").stdout.strip().splitlines()[-1]
        admin = httpx.Client(base_url=server.root_url, headers={"Authorization": f"Bearer {admin_key}"})
        faithful = upstreams["faithful"][0]
        deadline = time.monotonic() + 60
        views: dict[str, Any] = {}
        while time.monotonic() < deadline:  # two runs of the faithful channel: 8 requests each
            views = {c["name"]: c for c in admin.get("/admin/channels").json()["data"]}
            if len(faithful.requests) >= 16 and views["other_tokenizer"]["probe"]:
                break
            time.sleep(0.2)
        assert len(faithful.requests) >= 16, server.log()
        assert views["faithful"]["probe"] == {"ok": True, "failed": []}
        assert views["faithful"]["probe_every_seconds"] == 1
        assert views["other_tokenizer"]["probe"] == {"ok": False, "failed": ["fingerprint (gpt-5)"]}
        juice = [r for r in faithful.requests if "Juice" in r["messages"][0]["content"]]
        assert {r["reasoning_effort"] for r in juice} == {"minimal", "low", "medium", "high"}
        assert "probe of channel other_tokenizer (gpt-5): fingerprint failed" in server.log()
        assert "channel other_tokenizer is out of rotation" in server.log()
    finally:
        server.stop()


def test_probe_every_seconds_is_validated(aicy: AicyProcess, admin: httpx.Client) -> None:
    reply = admin.post(
        "/admin/channels",
        json={"name": "too-often", "base_url": "http://127.0.0.1:9/v1", "probe_every_seconds": 0},
    )
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "probe_every_seconds"
