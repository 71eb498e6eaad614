"""The aicy command: first-start banner, keys, models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support import MODEL, AicyProcess


def test_keys_create_list_revoke(aicy: AicyProcess) -> None:
    key = aicy.new_key("cli-account", name="cli-test")
    assert key.startswith("sk-aicy-")
    client = OpenAI(base_url=aicy.base_url, api_key=key, max_retries=0)
    assert client.models.list().data
    listing = aicy.cli("keys", "list").stdout
    assert key[:12] in listing and key not in listing
    aicy.cli("keys", "revoke", key[:12])
    # Another process revoked it: the server's key cache lets it go within AICY_KEY_CACHE_SECONDS (1 s).
    deadline = time.monotonic() + 5
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError as caught:
            assert caught.code == "invalid_api_key"
            break
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)


def test_revoke_unknown_key_fails(aicy: AicyProcess) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        aicy.cli("keys", "revoke", "sk-aicy-nope")


def test_models_table(aicy: AicyProcess) -> None:
    assert MODEL in aicy.cli("models").stdout


def test_first_start_prints_a_key_and_examples_that_work(tmp_path: Path) -> None:
    server = AicyProcess(
        tmp_path, extra_env={"AICY_LOG_LEVEL": "info", "AICY_ENGINE_MAX_OUTPUT_TOKENS": "64"}
    )
    server.start()
    try:
        log = server.log()
        key = re.search(r"^\s+(sk-aicy-\S+)$", log, re.MULTILINE)
        assert key is not None, log
        curl = re.search(r"^curl .*?'$", log, re.MULTILINE | re.DOTALL)
        assert curl is not None and key.group(1) in curl.group(0)
        out = subprocess.run(["bash", "-c", curl.group(0)], capture_output=True, text=True, check=True).stdout
        assert json.loads(out)["choices"][0]["message"]["content"]
        python = re.search(
            r"^from openai import OpenAI$.*?^print\(resp.output_text\)$", log, re.MULTILINE | re.DOTALL
        )
        assert python is not None
        printed = subprocess.run(
            [sys.executable, "-c", python.group(0)], capture_output=True, text=True, check=True
        )
        assert printed.stdout.strip()
    finally:
        server.stop()
    second = AicyProcess(tmp_path, extra_env={"AICY_LOG_LEVEL": "info"})
    second.start()
    try:
        assert "sk-aicy-" not in second.log().split("Uvicorn running")[-1].split("aicy is ready")[-1]
    finally:
        second.stop()


def test_channels_cli_and_the_running_server_picks_it_up(aicy: AicyProcess, client: OpenAI) -> None:
    import time

    from tests.fakes.fault_upstream import FaultUpstream

    upstream = FaultUpstream("cli").start()
    try:
        aicy.cli(
            "channels",
            "add",
            "--name",
            "cli-chan",
            "--base-url",
            upstream.base_url,
            "--models",
            "gpt-5-codex=up-codex",
            "--api-key",
            "sk-cli-upstream-key",
            "--priority",
            "3",
        )
        listing = aicy.cli("channels", "list").stdout
        assert (
            "cli-chan" in listing
            and "gpt-5-codex=up-codex" in listing
            and "sk-cli-upstream-key" not in listing
        )
        tested = aicy.cli("channels", "test", "cli-chan").stdout
        assert '"ok": true' in tested and "latency_ms" in tested
        assert upstream.requests[-1]["headers"]["authorization"] == "Bearer sk-cli-upstream-key"
        for _ in range(100):
            if "gpt-5-codex" in {m.id for m in client.models.list()}:
                break
            time.sleep(0.1)
        reply = client.chat.completions.create(
            model="gpt-5-codex", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content == "Hello from the fault upstream."
        aicy.cli("channels", "update", "cli-chan", '{"enabled": false}')
        aicy.cli("channels", "remove", "cli-chan")
        for _ in range(100):
            if "gpt-5-codex" not in {m.id for m in client.models.list()}:
                break
            time.sleep(0.1)
        assert "gpt-5-codex" not in {m.id for m in client.models.list()}
    finally:
        upstream.stop()


def test_models_cli_changes_the_catalog(aicy: AicyProcess) -> None:
    aicy.cli("models", "set", '{"id": "cli-model", "context_window": 1000, "max_output_tokens": 100}')
    assert "cli-model" in aicy.cli("models").stdout
    aicy.cli("models", "update", "cli-model", '{"max_output_tokens": 50}')
    aicy.cli("models", "remove", "cli-model")
    assert "cli-model" not in aicy.cli("models").stdout


def _cli_fails(aicy: AicyProcess, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "aicy", *args], env=aicy.env, capture_output=True, text=True)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout + done.stderr


def _balance(admin: httpx.Client, account: str) -> int:
    return int(admin.get(f"/admin/accounts/{account}").json()["balance"])


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("９", "not an amount"),  # fullwidth nine: was 9 USD
        ("²", "not an amount"),
        ("1e3", "not an amount"),
        ("1.0000001", "at most 6 decimal places"),
        ("1000000001", "limited to"),
        ("9200000000000", "limited to"),
        ("0", "must be positive"),
        ("-5", "must be positive"),
    ],
)
def test_accounts_topup_refuses_what_the_admin_api_refuses(
    aicy: AicyProcess, admin: httpx.Client, amount: str, message: str
) -> None:
    aicy.cli("accounts", "create", "cli-money")
    before = _balance(admin, "cli-money")
    assert message in _cli_fails(aicy, "accounts", "topup", "cli-money", "--", amount)
    assert _balance(admin, "cli-money") == before


def test_accounts_topup_once_per_idempotency_key(aicy: AicyProcess, admin: httpx.Client) -> None:
    aicy.cli("accounts", "create", "cli-once")
    first = aicy.cli("accounts", "topup", "cli-once", "2.5", "--idempotency-key", "cli-once-1").stdout
    again = aicy.cli("accounts", "topup", "cli-once", "2.5", "--idempotency-key", "cli-once-1").stdout
    assert "2.500000" in first and "2.500000" in again and "nothing moved" in again
    assert "different request" in _cli_fails(
        aicy, "accounts", "topup", "cli-once", "3", "--idempotency-key", "cli-once-1"
    )
    assert _balance(admin, "cli-once") == 2_500_000
    assert "at most 200 characters" in _cli_fails(aicy, "accounts", "create", "x" * 201)
