"""What the admin API refuses before it writes anything, on SQLite and PostgreSQL: amounts that are not JSON
integers or ASCII decimal strings within the bound, negative prices, NUL bytes and over-long names, query
numbers that are not ASCII digits; and money-moving calls made once per ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import AicyProcess, drop_postgres_database, fresh_postgres_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    url = None if request.param == "sqlite" else fresh_postgres_database()
    env = {"AICY_ENGINE_ENABLED": "false"}
    if url:
        env["AICY_DATABASE_URL"] = url
    proc = AicyProcess(Path(tmp_path_factory.mktemp("admin-inputs")), extra_env=env)
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


def _account(ops: httpx.Client, name: str) -> dict[str, Any]:
    reply = ops.post("/admin/accounts", json={"name": name})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _refused(reply: httpx.Response, param: str, code: str, status: int = 400) -> None:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code), error


def _books(ops: httpx.Client, name: str) -> tuple[int, list[dict[str, Any]]]:
    ledger = ops.get(f"/admin/accounts/{name}/ledger").json()["data"]
    balance = ops.get(f"/admin/accounts/{name}").json()["balance"]
    assert balance == sum(e["amount"] for e in ledger)
    return balance, ledger


@pytest.mark.parametrize("path", ["topup", "adjust"])
@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (True, "invalid_type"),  # was 1 micro-unit
        (1.9, "invalid_type"),  # was 1 micro-unit, truncated
        (1.0, "invalid_type"),
        (9.2e18, "invalid_type"),
        (None, "invalid_type"),
        ("９", "invalid_value"),  # fullwidth nine, was 9 USD
        ("1２", "invalid_value"),
        ("²", "invalid_value"),
        ("1e3", "invalid_value"),
        ("1.0000001", "invalid_value"),
        (9_200_000_000_000_000_000, "amount_out_of_range"),  # turned the SQLite balance into a REAL
        (10**15 + 1, "amount_out_of_range"),
        ("1000000000.000001", "amount_out_of_range"),
    ],
)
def test_amounts_are_integers_or_ascii_decimals_within_the_bound(
    ops: httpx.Client, path: str, amount: object, code: str
) -> None:
    name = "bad-amounts"
    if ops.get(f"/admin/accounts/{name}").status_code == 404:
        _account(ops, name)
    before = _books(ops, name)
    _refused(ops.post(f"/admin/accounts/{name}/{path}", json={"amount": amount}), "amount", code)
    assert _books(ops, name) == before  # nothing written


def test_amounts_that_are_fine(ops: httpx.Client) -> None:
    _account(ops, "fine")
    assert ops.post("/admin/accounts/fine/topup", json={"amount": "12.50"}).json()["balance"] == 12_500_000
    assert (
        ops.post("/admin/accounts/fine/topup", json={"amount": 10**15}).json()["balance"]
        == 10**15 + 12_500_000
    )
    adjusted = ops.post("/admin/accounts/fine/adjust", json={"amount": "-0.5", "note": "refund"})
    assert adjusted.json()["balance"] == 10**15 + 12_000_000
    _refused(ops.post("/admin/accounts/fine/topup", json={"amount": 0}), "amount", "invalid_value")
    _refused(ops.post("/admin/accounts/fine/topup", json={"amount": "-1"}), "amount", "invalid_value")
    _refused(ops.post("/admin/accounts/fine/topup", json={}), "amount", "missing_required_parameter")
    _refused(ops.post("/admin/accounts/fine/topup", json={"amount": 1, "note": 5}), "note", "invalid_type")
    _refused(ops.post("/admin/accounts/fine/topup", json={"amount": 1, "x": 1}), "x", "invalid_value")
    _refused(
        ops.post("/admin/accounts/fine/adjust", json={"amount": 1, "note": "a\x00b"}), "note", "invalid_value"
    )
    _refused(
        ops.post("/admin/accounts/fine/adjust", json={"amount": 1, "note": "n" * 1001}),
        "note",
        "string_above_max_length",
    )
    balance, ledger = _books(ops, "fine")
    assert balance == 10**15 + 12_000_000 and len(ledger) == 3


def test_an_idempotency_key_moves_money_once(ops: httpx.Client) -> None:
    _account(ops, "once")
    headers = {"Idempotency-Key": "topup-once-1"}
    first = ops.post("/admin/accounts/once/topup", json={"amount": "5", "note": "n"}, headers=headers)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = ops.post("/admin/accounts/once/topup", json={"amount": "5", "note": "n"}, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and first.json()["balance"] == 5_000_000
    by_id = ops.post(
        f"/admin/accounts/{first.json()['id']}/topup",
        json={"amount": 5_000_000, "note": "n"},
        headers=headers,
    )
    assert by_id.status_code == 200 and by_id.headers["idempotent-replayed"] == "true"  # the same request
    for other in (
        ("/admin/accounts/once/topup", {"amount": "6", "note": "n"}),
        ("/admin/accounts/once/topup", {"amount": "5"}),
        ("/admin/accounts/once/adjust", {"amount": "5", "note": "n"}),
    ):
        _refused(
            ops.post(other[0], json=other[1], headers=headers),
            "Idempotency-Key",
            "idempotency_key_reused",
            409,
        )
    adjust = {"Idempotency-Key": "adjust-once-1"}
    assert (
        ops.post("/admin/accounts/once/adjust", json={"amount": "-1"}, headers=adjust).json()["balance"]
        == 4_000_000
    )
    assert (
        ops.post("/admin/accounts/once/adjust", json={"amount": "-1"}, headers=adjust).json()["balance"]
        == 4_000_000
    )
    balance, ledger = _books(ops, "once")
    assert balance == 4_000_000 and len(ledger) == 2
    for bad in ("x" * 201, "with space", "ünï".encode("latin-1")):
        reply = ops.post("/admin/accounts/once/topup", json={"amount": 1}, headers={"Idempotency-Key": bad})
        _refused(reply, "Idempotency-Key", "invalid_value")
    assert _books(ops, "once") == (balance, ledger)


@pytest.mark.parametrize("field", ["spend_limit", "spend_limit_daily", "spend_limit_monthly"])
@pytest.mark.parametrize(
    ("value", "code"),
    [
        (True, "invalid_type"),
        (1.5, "invalid_type"),
        ("９", "invalid_value"),
        (-1, "invalid_value"),
        ("-0.01", "invalid_value"),
        (10**15 + 1, "amount_out_of_range"),
    ],
)
def test_key_spend_limits_follow_the_same_rules(
    ops: httpx.Client, field: str, value: object, code: str
) -> None:
    before = len(ops.get("/admin/keys").json()["data"])
    _refused(ops.post("/admin/keys", json={"account": "limits", "name": "k", field: value}), field, code)
    assert len(ops.get("/admin/keys").json()["data"]) == before
    made = ops.post("/admin/keys", json={"account": "limits-patch", "name": "k", field: "2.50"})
    assert made.status_code == 201 and made.json()[field] == 2_500_000
    _refused(ops.patch(f"/admin/keys/{made.json()['id']}", json={field: value}), field, code)
    (kept,) = [k for k in ops.get("/admin/keys").json()["data"] if k["id"] == made.json()["id"]]
    assert kept[field] == 2_500_000


def test_other_key_fields_fit_their_columns(ops: httpx.Client) -> None:
    for body, param, code in [
        ({"rpm": 2**31}, "rpm", "integer_above_max_value"),
        ({"rpm": 0}, "rpm", "integer_below_min_value"),
        ({"tpm": True}, "tpm", "invalid_type"),
        ({"expires_at": 10**18}, "expires_at", "integer_above_max_value"),
        ({"expires_at": "soon"}, "expires_at", "invalid_type"),
        ({"shared": "yes"}, "shared", "invalid_type"),
        ({"ips": ["10.0.0.0/33"]}, "ips", "invalid_value"),
    ]:
        _refused(ops.post("/admin/keys", json={"account": "columns", **body}), param, code)
    made = ops.post("/admin/keys", json={"account": "columns", "rpm": 5}).json()
    _refused(ops.patch(f"/admin/keys/{made['id']}", json={"rpmm": 6}), "rpmm", "unknown_parameter")
    _refused(ops.patch(f"/admin/keys/{made['id']}", json={"enabled": "false"}), "enabled", "invalid_type")
    assert ops.patch(f"/admin/keys/{made['id']}", json={"rpm": 6}).json()["rpm"] == 6


def test_model_prices_are_whole_and_not_negative(ops: httpx.Client) -> None:
    model = {"id": "price-checked", "context_window": 1000, "max_output_tokens": 100}
    for prices, param, code in [
        ({"input": -1}, "prices.input", "integer_below_min_value"),  # a negative price mints money
        ({"output": -5}, "prices.output", "integer_below_min_value"),
        ({"cached_input": True}, "prices.cached_input", "invalid_type"),
        ({"input": 1.5}, "prices.input", "invalid_type"),
        ({"input": "5"}, "prices.input", "invalid_type"),
        ({"input": 10**12 + 1}, "prices.input", "integer_above_max_value"),
        ({"inputs": 5}, "prices.inputs", "invalid_value"),
    ]:
        _refused(ops.post("/admin/models", json={**model, "prices": prices}), param, code)
    assert ops.get("/admin/models").json()["data"] == [
        m for m in ops.get("/admin/models").json()["data"] if m["id"] != "price-checked"
    ]
    made = ops.post("/admin/models", json={**model, "prices": {"input": 3, "output": 4}})
    assert made.status_code == 201 and made.json()["prices"] == {"input": 3, "cached_input": 0, "output": 4}
    _refused(
        ops.patch("/admin/models/price-checked", json={"prices": {"input": -3}}),
        "prices.input",
        "integer_below_min_value",
    )
    _refused(ops.post("/admin/models", json={**model, "id": "nul\x00model"}), "id", "invalid_value")
    assert ops.delete("/admin/models/price-checked").status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/admin/usage?days=%C2%B2", "days"),  # '²': str.isdigit() said yes, int() said no: a 500
        ("/admin/usage?days=%D9%A3", "days"),  # '٣', Arabic-Indic three
        ("/admin/usage?days=-1", "days"),
        ("/admin/usage?days=0", "days"),
        ("/admin/usage?days=99999", "days"),
        ("/admin/usage/lines?limit=%C2%B2", "limit"),
        ("/admin/usage/lines?limit=%EF%BC%95", "limit"),  # fullwidth five
        ("/admin/usage/lines?limit=1001", "limit"),
        ("/admin/usage/lines?limit=abc", "limit"),
    ],
)
def test_query_numbers_are_ascii_digits_in_range(ops: httpx.Client, path: str, param: str) -> None:
    _refused(ops.get(path), param, "invalid_value")


def test_query_numbers_that_are_fine(ops: httpx.Client) -> None:
    assert ops.get("/admin/usage?days=7").status_code == 200
    assert ops.get("/admin/usage").status_code == 200
    assert ops.get("/admin/usage/lines?limit=1000").status_code == 200
    assert ops.get("/admin/usage/lines").status_code == 200


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"name": "nul\x00name"}, "name", "invalid_value"),  # PostgreSQL refuses NUL in text: was a 500
        ({"name": "n" * 201}, "name", "string_above_max_length"),  # accounts.name is VARCHAR(200)
        ({"name": ""}, "name", "invalid_value"),
        ({"name": 5}, "name", "invalid_type"),
        ({}, "name", "missing_required_parameter"),
    ],
)
def test_account_names_fit_their_column(
    ops: httpx.Client, body: dict[str, Any], param: str, code: str
) -> None:
    _refused(ops.post("/admin/accounts", json=body), param, code)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"name": "nul\x00key"}, "name", "invalid_value"),
        ({"name": "k" * 201}, "name", "string_above_max_length"),  # api_keys.name is VARCHAR(200)
        ({"account": "nul\x00account"}, "account", "invalid_value"),
        ({"account": "a" * 201}, "account", "string_above_max_length"),
        ({"models": ["gpt-5", "nul\x00"]}, "models[1]", "invalid_value"),
    ],
)
def test_key_names_fit_their_column(ops: httpx.Client, body: dict[str, Any], param: str, code: str) -> None:
    _refused(ops.post("/admin/keys", json=body), param, code)


def test_names_at_the_limit_and_lookups_of_impossible_names(ops: httpx.Client) -> None:
    long_name = "名" * 200  # 200 characters, 600 bytes: the column counts characters
    assert ops.post("/admin/accounts", json={"name": long_name}).status_code == 201
    made = ops.post("/admin/keys", json={"account": long_name, "name": "键" * 200})
    assert made.status_code == 201, made.text
    _refused(ops.patch(f"/admin/keys/{made.json()['id']}", json={"name": "x\x00"}), "name", "invalid_value")
    # A NUL in the URL is refused at the edge (400) or found to name nothing (404): never a 500.
    assert ops.get("/admin/accounts/nul%00name").status_code in (400, 404)
    assert ops.get("/admin/keys", params={"account": "nul\x00name"}).status_code in (400, 404)
    assert ops.get("/admin/usage", params={"account": "nul\x00name"}).status_code in (400, 404)
    assert ops.post("/admin/accounts/nul%00name/topup", json={"amount": 1}).status_code in (400, 404)
