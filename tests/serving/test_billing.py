"""Billing end to end, on SQLite and on PostgreSQL: concurrency, cut-off streams, failures, crash recovery,
key limits and risk control, all through the official SDK against real aicy processes."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import FaultUpstream
from tests.support import MODEL, AicyProcess, drop_postgres_database, fresh_postgres_database

PRICE = {"input": 1_000_000, "cached_input": 500_000, "output": 2_000_000}  # micro-USD per 1M tokens
EMBEDDED = {
    "id": MODEL,
    "context_window": 8192,
    "max_output_tokens": 512,
    "default_temperature": 0.2,
    "default_top_p": 0.9,
    "prices": PRICE,
}


def _env(database_url: str | None) -> dict[str, str]:
    env = {"AICY_ENGINE_MAX_OUTPUT_TOKENS": "512", "AICY_RISK_MAX_IPS": "3", "AICY_BREAKER_FAILURES": "100"}
    if database_url:
        env["AICY_DATABASE_URL"] = database_url
    return env


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="module")
def server(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    proc = AicyProcess(Path(tmp_path_factory.mktemp("billing")), extra_env=_env(database))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def root(server: AicyProcess) -> Iterator[httpx.Client]:
    key = server.cli("keys", "create", "--admin", "--name", "ops").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.root_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        assert c.post("/admin/models", json=EMBEDDED).status_code == 201  # give the embedded model a price
        yield c


def _account(root: httpx.Client, name: str, micros: int, **key_fields) -> tuple[str, OpenAI]:
    assert root.post("/admin/accounts", json={"name": name}).status_code == 201
    if micros:
        assert root.post(f"/admin/accounts/{name}/topup", json={"amount": micros}).status_code == 200
    reply = root.post("/admin/keys", json={"account": name, "name": "k", **key_fields})
    assert reply.status_code == 201, reply.text
    base = str(root.base_url).rstrip("/") + "/v1"
    return reply.json()["key"], OpenAI(base_url=base, api_key=reply.json()["key"], max_retries=0, timeout=120)


def _books(root: httpx.Client, name: str) -> dict:
    account = root.get(f"/admin/accounts/{name}").json()
    reply = root.get(f"/admin/accounts/{name}/ledger")
    assert reply.status_code == 200, reply.text
    ledger = reply.json()["data"]
    return {**account, "ledger_sum": sum(e["amount"] for e in ledger), "ledger": ledger}


def _usage(root: httpx.Client, name: str) -> list[dict]:
    return root.get("/admin/usage", params={"account": name, "group_by": "key"}).json()["data"]


def _cost(input_tokens: int, cached: int, output: int) -> int:
    exact = (
        (input_tokens - cached) * PRICE["input"] + cached * PRICE["cached_input"] + output * PRICE["output"]
    )
    return -(-exact // 1_000_000)


def test_concurrent_requests_never_overdraw(root: httpx.Client) -> None:
    messages = [{"role": "user", "content": "Say hi."}]
    body_size = len(
        httpx.Request("POST", "/", json={"model": MODEL, "messages": messages, "max_tokens": 16}).content
    )
    reservation = body_size * PRICE["input"] // 1_000_000 + 16 * PRICE["output"] // 1_000_000
    _, client = _account(root, "crowd", reservation * 10 + reservation // 2)

    def call(_: int) -> str:
        try:
            client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16)
            return "ok"
        except openai.RateLimitError as exc:
            assert exc.code == "insufficient_quota"
            assert exc.response.headers["x-should-retry"] == "false"
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(call, range(50)))
    books = _books(root, "crowd")
    assert outcomes.count("ok") >= 10 and outcomes.count("refused") >= 20
    assert books["reserved"] == 0
    assert books["balance"] >= 0
    assert books["balance"] == books["ledger_sum"]
    charged = -sum(e["amount"] for e in books["ledger"] if e["reason"] == "charge")
    assert charged == sum(row["cost"] for row in _usage(root, "crowd"))


def test_usage_in_the_reply_is_what_is_charged(root: httpx.Client) -> None:
    _, client = _account(root, "exact", 10_000_000)
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=30
    )
    usage = reply.usage
    assert usage is not None
    books = _books(root, "exact")
    expected = _cost(usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens)
    assert 10_000_000 - books["balance"] == expected
    line = root.get("/admin/usage", params={"account": "exact", "group_by": "model"}).json()["data"][0]
    assert (line["input_tokens"], line["output_tokens"], line["cost"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        expected,
    )


def test_disconnect_mid_stream_is_charged_for_what_was_generated(
    root: httpx.Client, server: AicyProcess
) -> None:
    key, _ = _account(root, "leaver", 10_000_000)
    schema = {
        "type": "object",
        "properties": {"n": {"type": "array", "items": {"type": "integer"}, "minItems": 400}},
    }
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Numbers."}],
        "max_tokens": 400,
        "stream": True,
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    }
    before = server.health()["engine"]["generated_tokens"]
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as reply:
        seen = 0
        for line in reply.iter_lines():
            seen += line.startswith("data:")
            if seen >= 6:
                break
    for _ in range(200):
        if server.health()["engine"]["active_jobs"] == 0 and _books(root, "leaver")["reserved"] == 0:
            break
        time.sleep(0.05)
    generated = server.health()["engine"]["generated_tokens"] - before
    lines = root.get("/admin/usage", params={"account": "leaver", "group_by": "key"}).json()["data"]
    assert lines[0]["output_tokens"] == generated and 0 < generated < 400
    books = _books(root, "leaver")
    assert books["reserved"] == 0
    assert 10_000_000 - books["balance"] == lines[0]["cost"] > 0


@pytest.fixture(scope="module")
def broken() -> Iterator[FaultUpstream]:
    upstream = FaultUpstream("broken").start()
    yield upstream
    upstream.stop()


def test_failure_before_output_costs_nothing_and_cut_streams_are_estimated(
    root: httpx.Client, broken: FaultUpstream
) -> None:
    model = {"id": "priced-upstream", "context_window": 1000, "max_output_tokens": 100, "prices": PRICE}
    assert root.post("/admin/models", json=model).status_code == 201
    assert (
        root.post(
            "/admin/channels",
            json={"name": "broken", "base_url": broken.base_url, "models": ["priced-upstream"]},
        ).status_code
        == 201
    )
    _, client = _account(root, "unlucky", 10_000_000)
    broken.queue("500")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="priced-upstream", messages=[{"role": "user", "content": "x"}])
    assert _books(root, "unlucky")["balance"] == 10_000_000
    broken.queue("cut")
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model="priced-upstream", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    books = _books(root, "unlucky")
    assert books["reserved"] == 0 and 10_000_000 - books["balance"] > 0
    usage = server_lines(root, "unlucky")
    assert [line["status"] for line in usage] == ["failed", "failed"]
    assert usage[0]["estimated"] is True and usage[0]["output_tokens"] == 3
    assert usage[1]["cost"] == 0


def server_lines(root: httpx.Client, account: str) -> list[dict]:
    """The raw usage log lines of an account, newest first."""
    reply = root.get("/admin/usage/lines", params={"account": account})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["data"])


def test_billing_endpoints_for_chat_clients(root: httpx.Client) -> None:
    key, client = _account(root, "viewer", 5_000_000)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    headers = {"Authorization": f"Bearer {key}"}
    sub = httpx.get(
        f"{str(root.base_url).rstrip('/')}/v1/dashboard/billing/subscription", headers=headers
    ).json()
    books = _books(root, "viewer")
    assert sub["hard_limit_usd"] == pytest.approx(books["available"] / 1_000_000)
    used = httpx.get(f"{str(root.base_url).rstrip('/')}/v1/dashboard/billing/usage", headers=headers).json()
    assert used["total_usage"] == pytest.approx((5_000_000 - books["balance"]) / 10_000)


def test_key_limits(root: httpx.Client, server: AicyProcess) -> None:
    _, expired = _account(root, "lim-expired", 1_000_000, expires_at=int(time.time()) - 1)
    with pytest.raises(openai.AuthenticationError):
        expired.models.list()
    _, narrow = _account(root, "lim-models", 1_000_000, models=["priced-upstream"])
    assert [m.id for m in narrow.models.list()] == ["priced-upstream"]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        narrow.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_allowed"
    _, elsewhere = _account(root, "lim-ips", 1_000_000, ips=["10.0.0.0/8"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        elsewhere.models.list()
    assert caught.value.code == "ip_not_allowed"
    _, local = _account(root, "lim-ips-ok", 1_000_000, ips=["127.0.0.0/8", "::1/128"])
    assert local.models.list().data
    _, capped = _account(root, "lim-spend", 1_000_000, spend_limit="0.000100")
    with pytest.raises(openai.RateLimitError) as caught:
        capped.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=10
        )
    assert caught.value.code == "insufficient_quota"
    _, slow = _account(root, "lim-rpm", 1_000_000, rpm=2)
    for _ in range(2):
        slow.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=2)
    with pytest.raises(openai.RateLimitError) as caught:
        slow.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=2)
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) > 0
    _, thrifty = _account(root, "lim-tpm", 1_000_000, tpm=10)
    thrifty.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=5)
    with pytest.raises(openai.RateLimitError) as caught:
        thrifty.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=5
        )
    assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "tokens"
    _, off = _account(root, "lim-off", 1_000_000)
    key_id = root.get("/admin/keys", params={"account": "lim-off"}).json()["data"][0]["id"]
    root.patch(f"/admin/keys/{key_id}", json={"enabled": False})
    with pytest.raises(openai.AuthenticationError):
        off.models.list()


def test_leaked_key_is_suspended_but_shared_keys_are_not(root: httpx.Client, server: AicyProcess) -> None:
    _, client = _account(root, "leaky", 1_000_000)
    for number in range(3):
        client.with_options(default_headers={"X-Forwarded-For": f"203.0.113.{number}"}).models.list()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.with_options(default_headers={"X-Forwarded-For": "203.0.113.99"}).models.list()
    assert caught.value.code == "key_suspended" and "new key" in caught.value.message
    with pytest.raises(openai.PermissionDeniedError):
        client.models.list()
    assert "risk control" in server.cli("keys", "list").stdout
    _, shared = _account(root, "team", 1_000_000, shared=True)
    for number in range(6):
        shared.with_options(default_headers={"X-Forwarded-For": f"198.51.100.{number}"}).models.list()


def test_crash_mid_stream_is_recovered_on_restart(database: str | None, tmp_path: Path) -> None:
    proc = AicyProcess(tmp_path, extra_env=_env(database))
    proc.start()
    admin_key = proc.cli("keys", "create", "--admin").stdout.strip().splitlines()[-1]
    ops = httpx.Client(base_url=proc.root_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    assert ops.post("/admin/models", json=EMBEDDED).status_code == 201
    key, _ = _account(ops, "crashy", 10_000_000)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a long story."}],
        "max_tokens": 400,
        "stream": True,
    }
    with httpx.stream(
        "POST",
        f"{proc.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as reply:
        lines = reply.iter_lines()  # kept open: leaving the loop early would close the connection
        assert next(line for line in lines if line.startswith("data:"))
        assert _books(ops, "crashy")["reserved"] > 0
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait()
    proc.start()
    books = _books(ops, "crashy")
    assert books["reserved"] == 0
    assert books["balance"] == 10_000_000 == books["ledger_sum"]
    proc.stop()
    ops.close()


def test_a_non_stream_that_fails_after_output_was_produced_costs_nothing(
    root: httpx.Client, broken: FaultUpstream
) -> None:
    """The upstream produced three words, then the connection broke: the customer received an error, not
    the words, so nothing is charged (a stream that had shown them is charged for them, above)."""
    model = {"id": "priced-cut", "context_window": 1000, "max_output_tokens": 100, "prices": PRICE}
    assert root.post("/admin/models", json=model).status_code == 201
    channel = {"name": "broken-cut", "base_url": broken.base_url, "models": ["priced-cut"]}
    assert root.post("/admin/channels", json=channel).status_code == 201
    _, client = _account(root, "cut-whole", 10_000_000)
    broken.queue("cut")  # a Responses request over a Chat channel is translated from a stream
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="priced-cut", input="x")
    assert caught.value.status_code == 502
    books = _books(root, "cut-whole")
    assert books["balance"] == 10_000_000 and books["reserved"] == 0
    (line,) = server_lines(root, "cut-whole")
    assert line["status"] == "failed" and line["cost"] == 0 and line["output_tokens"] == 3
