"""``aicy probe run`` and ``report`` through aicy's own channels, against three fake GPT-5 upstreams: one
faithful, one with another tokenizer, one that ignores the reasoning effort."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.probe_upstreams import ProbeUpstream
from tests.fakes.threaded import ThreadedApp
from tests.support import AicyProcess, Operator

MODES = ("faithful", "other_tokenizer", "ignores_effort")


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, tuple[ProbeUpstream, ThreadedApp]]]:
    started = {mode: (fake := ProbeUpstream(mode), fake.serve()) for mode in MODES}
    yield started
    for _, server in started.values():
        server.stop()


@pytest.fixture
def operator(tmp_path: Path, fakes: dict[str, tuple[ProbeUpstream, ThreadedApp]]) -> AicyProcess:
    """An aicy data folder (no server needed: probes call the channels themselves) with the three channels."""
    aicy = AicyProcess(tmp_path)
    for mode, (_, server) in fakes.items():
        aicy.cli(
            "channels",
            "add",
            "--name",
            mode,
            "--base-url",
            server.base_url,
            "--models",
            "gpt-5",
            "--api-key",
            "sk-upstream",
        )
    return aicy


def aicy_cli(aicy: AicyProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The command without ``check``: a failed probe exits 1."""
    return subprocess.run([sys.executable, "-m", "aicy", *args], env=aicy.env, capture_output=True, text=True)


def verdicts(runs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {run["channel"]: {c["name"]: c["verdict"] for c in run["checks"]} for run in runs}


def test_the_probe_flags_the_other_tokenizer_and_the_ignored_effort(
    operator: AicyProcess, fakes: dict[str, tuple[ProbeUpstream, ThreadedApp]]
) -> None:
    done = aicy_cli(operator, "probe", "run", "--json")
    assert done.returncode == 1, done.stderr
    runs = json.loads(done.stdout)
    found = verdicts(runs)
    assert {ch: v["fingerprint"] for ch, v in found.items()} == {
        "faithful": "pass",
        "other_tokenizer": "fail",
        "ignores_effort": "pass",
    }
    assert {ch: v["effort"] for ch, v in found.items()} == {
        "faithful": "pass",
        "other_tokenizer": "pass",
        "ignores_effort": "fail",
    }
    assert found["faithful"] == {
        "fingerprint": "pass",
        "effort": "pass",
        "usage": "pass",
        "limits": "pass",
        "drift": "skip",
    }
    assert {v["limits"] for v in found.values()} == {"pass"}
    by_channel = {run["channel"]: {c["name"]: c for c in run["checks"]} for run in runs}
    fingerprint = by_channel["other_tokenizer"]["fingerprint"]
    juice = [row for row in fingerprint["evidence"] if row["prompt"] == "juice"]
    assert juice and all(row["reported"] != row["counted"] for row in juice)
    effort = by_channel["ignores_effort"]["effort"]["evidence"][0]
    assert effort["reasoning_tokens"] == {e: 160 for e in ("minimal", "low", "medium", "high")}
    # The faithful upstream was asked the Juice prompt at each of gpt-5's efforts, with usage in the stream.
    asked = fakes["faithful"][0].requests
    assert sorted(
        r.get("reasoning_effort") or "" for r in asked if "Juice" in r["messages"][0]["content"]
    ) == ["high", "low", "medium", "minimal"]
    assert all(r["stream"] and r["stream_options"] == {"include_usage": True} for r in asked)
    assert not any("temperature" in r for r in asked)  # a reasoning model refuses it


def test_the_printed_report_shows_the_evidence_and_the_channel_list_flags(
    operator: AicyProcess, tmp_path: Path
) -> None:
    printed = aicy_cli(operator, "probe", "run", "--channel", "other_tokenizer")
    assert printed.returncode == 1
    assert "fingerprint failed" in printed.stdout and "another tokenizer" in printed.stdout
    assert '"prompt": "juice"' in printed.stdout  # the evidence, per prompt
    assert aicy_cli(operator, "probe", "run", "--channel", "faithful").returncode == 0
    listing = operator.cli("channels", "list").stdout
    rows = {line.split("│")[1].strip(): line for line in listing.splitlines() if line.count("│") > 3}
    assert "FAILED: fingerprint (gpt-5)" in rows["other_tokenizer"]
    assert "FAILED" not in rows["faithful"] and " ok " in rows["faithful"]
    assert "FAILED" not in rows["ignores_effort"]  # never probed: no flag

    plot = tmp_path / "report.png"
    report = aicy_cli(operator, "probe", "report", "--json", "--plot", str(plot))
    assert report.returncode == 1
    shown = json.loads(report.stdout)
    assert {(c["channel"], c["name"], c["verdict"]) for c in shown} >= {
        ("other_tokenizer", "fingerprint", "fail"),
        ("faithful", "fingerprint", "pass"),
    }
    assert all(set(c) >= {"name", "verdict", "evidence"} for c in shown)
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    only_faithful = aicy_cli(operator, "probe", "report", "--channel", "faithful", "--plot", str(plot))
    assert only_faithful.returncode == 0, only_faithful.stdout
    assert "faithful" in only_faithful.stdout and "gpt-5" in only_faithful.stdout


def test_drift_flags_a_channel_whose_answers_change(
    operator: AicyProcess, fakes: dict[str, tuple[ProbeUpstream, ThreadedApp]]
) -> None:
    fake = fakes["faithful"][0]

    def drift() -> dict[str, Any]:
        done = aicy_cli(operator, "probe", "run", "--channel", "faithful", "--json")
        return next(c for c in json.loads(done.stdout)[0]["checks"] if c["name"] == "drift")

    assert drift()["verdict"] == "skip"
    same = drift()
    assert same["verdict"] == "pass" and same["evidence"]["median_similarity"] == 1.0
    saved = dict(fake.answers)
    fake.answers = {k: f"Something else entirely, number {n}." for n, k in enumerate(saved)}
    try:
        changed = drift()
    finally:
        fake.answers = saved
    assert changed["verdict"] == "fail" and "answers changed" in changed["reason"]
    assert changed["evidence"]["median_similarity"] < 0.5


def test_the_admin_api_shows_the_latest_probe(
    aicy: AicyProcess, admin: Any, fakes: dict[str, tuple[ProbeUpstream, ThreadedApp]]
) -> None:
    """Against the running server's own database: a CLI probe run shows in ``GET /admin/channels``."""
    helper = Operator(admin)
    try:
        helper.model("probe-gpt-5", reasoning_efforts=["low", "high"], default_reasoning_effort="low")
        for mode in ("faithful", "other_tokenizer"):
            helper.channel(f"probe-{mode}", fakes[mode][1].base_url, {"probe-gpt-5": "gpt-5"})
        never = admin.get("/admin/channels/probe-faithful").json()
        assert never["probe"] is None
        done = aicy_cli(aicy, "probe", "run", "--model", "probe-gpt-5", "--json")
        assert done.returncode == 1, done.stdout + done.stderr
        assert {run["channel"] for run in json.loads(done.stdout)} == {
            "probe-faithful",
            "probe-other_tokenizer",
        }
        listed = {c["name"]: c["probe"] for c in admin.get("/admin/channels").json()["data"]}
        assert listed["probe-faithful"] == {"ok": True, "failed": []}
        assert listed["probe-other_tokenizer"] == {"ok": False, "failed": ["fingerprint (probe-gpt-5)"]}
        one = admin.get("/admin/channels/probe-other_tokenizer").json()
        assert one["probe"] == listed["probe-other_tokenizer"]
    finally:
        helper.cleanup()


def test_the_operator_console_shows_the_latest_checks(operator: AicyProcess) -> None:
    import re

    import httpx

    assert aicy_cli(operator, "probe", "run", "--channel", "other_tokenizer").returncode == 1
    operator.extra_env["AICY_ENGINE_ENABLED"] = "false"
    operator.start()
    try:
        key = operator.cli("keys", "create", "--admin", "--name", "ops").stdout.strip().splitlines()[-1]
        admin = httpx.Client(
            base_url=operator.root_url, headers={"authorization": f"Bearer {key}"}, timeout=60
        )
        account = next(k["account"] for k in admin.get("/admin/keys").json()["data"] if k["role"] == "admin")
        assert (
            admin.post(f"/admin/accounts/{account}/login", json={"password": "probe pages"}).status_code
            == 200
        )
        with httpx.Client(base_url=operator.root_url, timeout=60) as browser:
            form = browser.get("/console/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            data = {"csrf": csrf, "name": account, "password": "probe pages"}
            assert browser.post("/console/login", data=data).status_code == 303
            page = browser.get("/operator/probes").text
        assert re.search(r"<td>other_tokenizer</td><td>gpt-5</td><td>fingerprint</td><td><b>fail</b>", page)
        assert 'id="probe-runs"' in page and "<td>other_tokenizer</td>" in page.split('id="probe-runs"')[1]
    finally:
        operator.stop()
