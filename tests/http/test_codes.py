"""Top-up codes through a real ``aicy serve`` on SQLite and PostgreSQL, over raw HTTP: operators create,
list and revoke batches under /admin/codes; customers redeem with their key at
/v1/dashboard/billing/redeem; refusals are OpenAI-shaped with distinct codes, guessing is rate-limited per
account and per client IP, and racing redeems credit a code once.

Client IPs are set with ``X-Forwarded-For``, which uvicorn takes from 127.0.0.1 (a reverse proxy's
address), so each test guesses from addresses of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aicy.domain.codes import canonical_code, code_hint, generate_code, hash_code
from aicy.protocol.ids import new_id
from aicy.storage.audit import Change
from aicy.storage.codes import BatchSpec, NewCode, TopupCodeStore
from aicy.storage.db import create_engine
from tests.support import AicyProcess, drop_postgres_database, fresh_postgres_database

REDEEM = "/v1/dashboard/billing/redeem"
DAY = 86_400


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    url = None if request.param == "sqlite" else fresh_postgres_database()
    env = {"AICY_ENGINE_ENABLED": "false"}
    if url:
        env["AICY_DATABASE_URL"] = url
    proc = AicyProcess(Path(tmp_path_factory.mktemp("codes")), extra_env=env)
    proc.start()
    yield proc
    proc.stop()
    if url:
        drop_postgres_database(url)


@pytest.fixture(scope="module")
def ops(server: AicyProcess) -> Iterator[httpx.Client]:
    key = server.cli("keys", "create", "--admin", "--name", "ops").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.root_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        yield c


def customer(ops: httpx.Client, account: str, ip: str) -> httpx.Client:
    """A client with a new key of ``account`` (shared: the leak detector leaves it alone), from ``ip``."""
    made = ops.post("/admin/keys", json={"account": account, "name": "k", "shared": True})
    assert made.status_code == 201, made.text
    headers = {"Authorization": f"Bearer {made.json()['key']}", "X-Forwarded-For": ip}
    return httpx.Client(base_url=ops.base_url, headers=headers, timeout=30)


def make_batch(ops: httpx.Client, **body: Any) -> dict[str, Any]:
    reply = ops.post("/admin/codes", json={"value": "10", "count": 1, **body})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def refused(reply: httpx.Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def books(ops: httpx.Client, account: str) -> tuple[int, list[dict[str, Any]]]:
    """The balance and the ledger, checked to agree."""
    ledger = ops.get(f"/admin/accounts/{account}/ledger").json()["data"]
    balance = ops.get(f"/admin/accounts/{account}").json()["balance"]
    assert balance == sum(e["amount"] for e in ledger)
    return balance, ledger


def expired_code(server: AicyProcess) -> str:
    """A code whose batch expired a minute ago, written straight into the server's database (the API
    refuses to make one)."""
    code = generate_code()
    canonical = canonical_code(code)
    assert canonical is not None

    async def write() -> None:
        engine = create_engine(
            server.env.get("AICY_DATABASE_URL") or f"sqlite+aiosqlite:///{server.data_dir}/aicy.db"
        )
        store = TopupCodeStore(engine)
        try:
            batch = BatchSpec(new_id("batch_", 8), 1_000_000, int(time.time()) - 60, None)
            stored = [NewCode(new_id("code_", 8), hash_code(canonical), code_hint(canonical))]
            await store.create_batch(batch, stored, Change("test", "codes.create", batch.id, {}))
        finally:
            store.tx.close()
            await engine.dispose()

    asyncio.run(write())
    return code


def test_a_batch_is_made_listed_and_redeemed(server: AicyProcess, ops: httpx.Client) -> None:
    expires = int(time.time()) + 90 * DAY
    batch = make_batch(ops, value="12.5", count=3, expires_at=expires, note="reseller A")
    assert (batch["value"], batch["count"], batch["unused"], batch["expires_at"]) == (
        12_500_000,
        3,
        3,
        expires,
    )
    assert len(set(batch["codes"])) == 3 and all(c.startswith("aicy-") for c in batch["codes"])
    listing = ops.get("/admin/codes").text + ops.get("/admin/codes", params={"batch": batch["id"]}).text
    assert batch["id"] in listing and not any(code in listing for code in batch["codes"])  # shown once

    with customer(ops, "redeemer", "10.1.0.1") as c:
        typed = "  " + batch["codes"][0].upper().replace("-", " ") + " "  # as a person might type it
        reply = c.post(REDEEM, json={"code": typed})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "object": "topup_code.redemption",
            "credited": 12_500_000,
            "balance": 12_500_000,
            "available": 12_500_000,
            "unit": "micro-USD",
        }
        assert c.get("/v1/dashboard/billing/subscription").json()["hard_limit_usd"] == 12.5
    balance, ledger = books(ops, "redeemer")
    assert balance == 12_500_000 and [e["reason"] for e in ledger] == ["redeem"]
    assert batch["id"] in ledger[0]["note"]

    redeemed = ops.get("/admin/codes", params={"batch": batch["id"], "status": "redeemed"}).json()["data"]
    account_id = ops.get("/admin/accounts/redeemer").json()["id"]
    assert [(c["redeemed_by"], c["value"], c["status"]) for c in redeemed] == [
        (account_id, 12_500_000, "redeemed")
    ]
    summary = next(b for b in ops.get("/admin/codes").json()["data"] if b["id"] == batch["id"])
    assert (summary["unused"], summary["redeemed"], summary["note"]) == (2, 1, "reseller A")

    created = ops.get("/admin/audit", params={"action": "codes.create"}).json()["data"]
    entry = next(e for e in created if e["target"] == batch["id"])
    assert entry["actor"].startswith("key_") and entry["details"]["count"] == 3


def test_refusals_say_why_and_unknown_reads_like_revoked(server: AicyProcess, ops: httpx.Client) -> None:
    batch = make_batch(ops, count=3)
    used, revoked, _ = batch["codes"]
    with customer(ops, "refused", "10.2.0.1") as c:
        assert c.post(REDEEM, json={"code": used}).status_code == 200
        again = refused(c.post(REDEEM, json={"code": used}), 400, "code_already_redeemed", "code")
        assert "already been redeemed" in again["message"]
        assert ops.post("/admin/codes/revoke", json={"code": revoked}).json()["revoked"] == 1
        gone = refused(c.post(REDEEM, json={"code": revoked}), 400, "code_revoked", "code")
        unknown = refused(c.post(REDEEM, json={"code": generate_code()}), 400, "code_not_found", "code")
        assert gone["message"] == unknown["message"]
        refused(c.post(REDEEM, json={"code": "hello"}), 400, "code_not_found", "code")
        late = refused(c.post(REDEEM, json={"code": expired_code(server)}), 400, "code_expired", "code")
        assert "expired" in late["message"]
    assert books(ops, "refused")[0] == 10_000_000  # only the one good redeem


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"code": 5}, "invalid_type", "code"),
        ({"code": None}, "invalid_type", "code"),
        ({"code": ["aicy-"]}, "invalid_type", "code"),
        ({}, "missing_required_parameter", "code"),
        ({"code": ""}, "invalid_value", "code"),
        ({"code": "aicy-\x00"}, "invalid_value", "code"),
        ({"code": "a" * 201}, "string_above_max_length", "code"),
        ({"code": "aicy-x", "account": "someone-else"}, "invalid_value", "account"),
        ([], "invalid_type", None),
    ],
)
def test_malformed_redeem_bodies(ops: httpx.Client, body: Any, code: str, param: str | None) -> None:
    with customer(ops, "malformed", "10.3.0.1") as c:
        refused(c.post(REDEEM, json=body), 400, code, param)


def test_redeem_needs_a_key_and_json(server: AicyProcess, ops: httpx.Client) -> None:
    refused(httpx.post(server.root_url + REDEEM, json={"code": generate_code()}), 401, "invalid_api_key")
    with customer(ops, "not-json", "10.3.0.2") as c:
        refused(c.post(REDEEM, content=b"{code"), 400, "invalid_json")
        refused(c.get(REDEEM), 405, "method_not_allowed")


def test_guessing_is_rate_limited_per_account_and_per_ip(server: AicyProcess, ops: httpx.Client) -> None:
    good = make_batch(ops, count=1)["codes"][0]
    with customer(ops, "guesser", "10.4.0.1") as guesser:
        for _ in range(10):
            refused(guesser.post(REDEEM, json={"code": generate_code()}), 400, "code_not_found")
        limited = guesser.post(REDEEM, json={"code": good})  # even a good code: the limit comes first
        refused(limited, 429, "rate_limit_exceeded")
        assert 1 <= int(limited.headers["retry-after"]) <= 600
    with customer(ops, "same-ip", "10.4.0.1") as neighbour:  # another account, the same address
        refused(neighbour.post(REDEEM, json={"code": good}), 429, "rate_limit_exceeded")
    with customer(ops, "guesser", "10.4.0.2") as moved:  # the same account, another address
        refused(moved.post(REDEEM, json={"code": good}), 429, "rate_limit_exceeded")
    assert books(ops, "guesser")[0] == 0
    with customer(ops, "honest", "10.4.0.3") as honest:
        assert honest.post(REDEEM, json={"code": good}).status_code == 200
        for _ in range(9):  # failures below the limit leave an account free to redeem
            refused(honest.post(REDEEM, json={"code": good}), 400, "code_already_redeemed")
        assert honest.post(REDEEM, json={"code": make_batch(ops)["codes"][0]}).status_code == 200


def test_racing_redeems_over_http_credit_once(server: AicyProcess, ops: httpx.Client) -> None:
    racers = 8
    codes = make_batch(ops, value=3_000_000, count=4)["codes"]
    clients = [customer(ops, f"racer-{i}", f"10.5.0.{i + 1}") for i in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[list[int]] = [[] for _ in range(racers)]

    def race(i: int) -> None:
        for code in codes:
            barrier.wait()
            results[i].append(clients[i].post(REDEEM, json={"code": code}).status_code)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    for round_ in range(len(codes)):
        assert sorted(r[round_] for r in results) == [200] + [400] * (racers - 1)
    total = sum(books(ops, f"racer-{i}")[0] for i in range(racers))
    assert total == 3_000_000 * len(codes)


def test_revoking_a_batch_a_code_or_an_id(server: AicyProcess, ops: httpx.Client) -> None:
    batch = make_batch(ops, count=4)
    first, second, third, _ = batch["codes"]
    with customer(ops, "revoked-too-late", "10.6.0.1") as c:
        assert c.post(REDEEM, json={"code": first}).status_code == 200
    refused(ops.post("/admin/codes/revoke", json={"code": first}), 400, "code_already_redeemed", "code")
    assert ops.post("/admin/codes/revoke", json={"code": second.upper()}).json()["revoked"] == 1
    unused = ops.get("/admin/codes", params={"batch": batch["id"], "status": "unused"}).json()["data"]
    hint = code_hint(str(canonical_code(third)))
    by_id = next(c["id"] for c in unused if c["hint"] == hint)
    assert ops.post("/admin/codes/revoke", json={"code": by_id}).json()["revoked"] == 1
    assert ops.post("/admin/codes/revoke", json={"code": by_id}).json()["revoked"] == 0
    assert ops.post("/admin/codes/revoke", json={"batch": batch["id"]}).json()["revoked"] == 1
    summary = next(b for b in ops.get("/admin/codes").json()["data"] if b["id"] == batch["id"])
    assert (summary["unused"], summary["redeemed"], summary["revoked"]) == (0, 1, 3)
    revocations = ops.get("/admin/audit", params={"action": "codes.revoke"}).json()["data"]
    mine = [
        e
        for e in revocations
        if e["target"] == batch["id"] or (e["details"] or {}).get("batch") == batch["id"]
    ]
    assert len(mine) == 3 and all(e["actor"].startswith("key_") for e in mine)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"value": True}, "value", "invalid_type"),
        ({"value": 1.5}, "value", "invalid_type"),
        ({"value": None}, "value", "invalid_type"),
        ({"value": "９"}, "value", "invalid_value"),
        ({"value": "1e3"}, "value", "invalid_value"),
        ({"value": 0}, "value", "invalid_value"),
        ({"value": "-1"}, "value", "invalid_value"),
        ({"value": 10**15 + 1}, "value", "amount_out_of_range"),
        ({"value": 1, "count": 0}, "count", "integer_below_min_value"),
        ({"value": 1, "count": 10_001}, "count", "integer_above_max_value"),
        ({"value": 1, "count": 10**30}, "count", "invalid_type"),  # beyond 64 bits: read as a float
        ({"value": 1, "count": "5"}, "count", "invalid_type"),
        ({"value": 1, "count": True}, "count", "invalid_type"),
        ({"value": 1, "count": 2.0}, "count", "invalid_type"),
        ({"value": 1, "expires_at": 1}, "expires_at", "invalid_value"),  # already past
        ({"value": 1, "expires_at": "2030-01-01"}, "expires_at", "invalid_type"),
        ({"value": 1, "expires_at": -1}, "expires_at", "integer_below_min_value"),
        ({"value": 1, "note": "a\x00b"}, "note", "invalid_value"),
        ({"value": 1, "note": "n" * 1001}, "note", "string_above_max_length"),
        ({"value": 1, "codes": ["mine"]}, "codes", "invalid_value"),
        ({"count": 1}, "value", "missing_required_parameter"),
    ],
)
def test_batch_inputs_are_checked_before_anything_is_written(
    ops: httpx.Client, body: dict[str, Any], param: str, code: str
) -> None:
    before = ops.get("/admin/codes").json()["data"]
    refused(ops.post("/admin/codes", json=body), 400, code, param)
    assert ops.get("/admin/codes").json()["data"] == before


def test_revoke_and_list_inputs(server: AicyProcess, ops: httpx.Client) -> None:
    refused(ops.post("/admin/codes/revoke", json={}), 400, "invalid_value")
    batch = make_batch(ops)
    both = {"batch": batch["id"], "code": batch["codes"][0]}
    refused(ops.post("/admin/codes/revoke", json=both), 400, "invalid_value")
    refused(ops.post("/admin/codes/revoke", json={"batch": "batch_nope"}), 404, "batch_not_found", "batch")
    refused(ops.post("/admin/codes/revoke", json={"code": generate_code()}), 404, "code_not_found", "code")
    refused(ops.post("/admin/codes/revoke", json={"batch": "b\x00"}), 400, "invalid_value", "batch")
    refused(ops.post("/admin/codes/revoke", json={"batch": 7}), 400, "invalid_type", "batch")
    refused(ops.get("/admin/codes", params={"status": "bogus"}), 400, "invalid_value", "status")
    refused(
        ops.get("/admin/codes", params={"batch": batch["id"], "limit": "١"}), 400, "invalid_value", "limit"
    )
    refused(ops.get("/admin/codes", params={"batch": "batch_nope"}), 404, "batch_not_found")
    refused(ops.get("/admin/audit", params={"limit": "0"}), 400, "invalid_value", "limit")
    with customer(ops, "not-an-operator", "10.7.0.1") as c:
        refused(c.post("/admin/codes", json={"value": 1}), 403, "permission_denied")
        refused(c.get("/admin/codes"), 403, "permission_denied")
        refused(c.post("/admin/codes/revoke", json={"batch": batch["id"]}), 403, "permission_denied")
        refused(c.get("/admin/audit"), 403, "permission_denied")


def test_a_batch_of_ten_thousand(ops: httpx.Client) -> None:
    batch = make_batch(ops, value=1, count=10_000)
    assert len(set(batch["codes"])) == 10_000
    summary = next(b for b in ops.get("/admin/codes").json()["data"] if b["id"] == batch["id"])
    assert summary["unused"] == 10_000
