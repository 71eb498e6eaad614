"""The operator console against a real aicy: admin accounts only, every change applied at once and
audited, top-ups moved once per form, codes made here and redeemed in the customer console."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.fault_upstream import FaultUpstream
from tests.support import AicyProcess, Operator

PASSWORD = "operator password"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:300]
    return found.group(1)


@contextlib.contextmanager
def _signed_in(aicy: AicyProcess, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=aicy.root_url, timeout=60, follow_redirects=False) as browser:
        form = browser.get("/console/login")
        data = {"csrf": _csrf(form.text), "name": name, "password": PASSWORD}
        reply = browser.post("/console/login", data=data)
        assert reply.status_code == 303, reply.text
        yield browser


def _account(admin: httpx.Client, role: str) -> str:
    name = f"{role}-{time.monotonic_ns()}"
    assert admin.post("/admin/keys", json={"account": name, "role": role}).status_code == 201
    assert admin.post(f"/admin/accounts/{name}/login", json={"password": PASSWORD}).status_code == 200
    return name


@pytest.fixture
def ops(aicy: AicyProcess, admin: httpx.Client) -> Iterator[tuple[str, httpx.Client]]:
    name = _account(admin, "admin")
    with _signed_in(aicy, name) as browser:
        yield name, browser


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("operator").start()
    yield server
    server.stop()


def test_only_admin_accounts_see_the_operator_console(aicy: AicyProcess, admin: httpx.Client) -> None:
    assert httpx.get(f"{aicy.root_url}/operator", timeout=30).status_code == 404
    customer = _account(admin, "customer")
    with _signed_in(aicy, customer) as browser:
        for path in ("/operator", "/operator/accounts", "/operator/codes", "/operator/audit"):
            assert browser.get(path).status_code == 404, path
        page = browser.get("/console").text
        forged = browser.post("/operator/codes", data={"csrf": _csrf(page), "value": "100", "count": "1"})
        assert forged.status_code == 404
    assert not [b for b in admin.get("/admin/codes").json()["data"] if b.get("value") == 100_000_000]


def test_channels_are_tested_changed_and_audited(
    ops: tuple[str, httpx.Client], operator: Operator, upstream: FaultUpstream, admin: httpx.Client
) -> None:
    name, browser = ops
    model = operator.model(f"op-{time.monotonic_ns()}")
    channel = f"op-chan-{time.monotonic_ns()}"
    operator.channel(channel, upstream.base_url, [model])
    served = admin.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert served.status_code == 200, served.text
    page = browser.get("/operator").text
    assert f'id="channel-{channel}"' in page
    row = page.split(f'id="channel-{channel}"')[1].split("</tr>")[0]
    assert re.search(r"\d+ ms / \d+ ms \(1\)", row), row
    tested = browser.post(f"/operator/channels/{channel}", data={"csrf": _csrf(page), "action": "test"})
    assert tested.status_code == 200 and re.search(r'id="tested">test of [^:]+: ok', tested.text)
    saved = browser.post(
        f"/operator/channels/{channel}",
        data={"csrf": _csrf(page), "action": "save", "priority": "3", "weight": "7", "capacity": "2"},
    )
    assert saved.status_code == 303
    shown = admin.get(f"/admin/channels/{channel}").json()
    assert (shown["priority"], shown["weight"], shown["capacity"]) == (3, 7, 2)
    bad = browser.post(f"/operator/channels/{channel}", data={"csrf": _csrf(page), "weight": "-1"})
    assert bad.status_code == 400
    off = browser.post(f"/operator/channels/{channel}", data={"csrf": _csrf(page), "action": "disable"})
    assert off.status_code == 303 and admin.get(f"/admin/channels/{channel}").json()["enabled"] is False
    audit = browser.get("/operator/audit").text
    for action in ("channel.test", "channel.update"):
        assert re.search(rf"<td>console:{re.escape(name)}</td><td>{action}</td><td>{channel}</td>", audit)


def test_prices_and_top_ups(ops: tuple[str, httpx.Client], operator: Operator, admin: httpx.Client) -> None:
    _, browser = ops
    model = operator.model(f"priced-{time.monotonic_ns()}")
    page = browser.get("/operator/models").text
    data = {"csrf": _csrf(page), "model": model, "input": "1.25", "cached_input": "0.125", "output": "10"}
    assert browser.post("/operator/models", data=data).status_code == 303
    listed = {m["id"]: m for m in admin.get("/admin/models").json()["data"]}
    assert listed[model]["prices"] == {"input": 1_250_000, "cached_input": 125_000, "output": 10_000_000}
    for bad in ("-1", "1e3", "１", "0.0000001", "nan"):
        refused = browser.post("/operator/models", data={**data, "input": bad})
        assert refused.status_code == 400, bad

    customer = _account(admin, "customer")
    account = admin.get(f"/admin/accounts/{customer}").json()["id"]
    page = browser.get(f"/operator/accounts/{account}").text
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf": _csrf(page), "once": once, "kind": "topup", "amount": "12.5", "note": "paid by wire"}
    assert browser.post(f"/operator/accounts/{account}", data=form).status_code == 303
    assert browser.post(f"/operator/accounts/{account}", data=form).status_code == 303  # a double submit
    assert admin.get(f"/admin/accounts/{customer}").json()["balance"] == 12_500_000
    refused = browser.post(f"/operator/accounts/{account}", data={**form, "once": "other", "amount": "-3"})
    assert refused.status_code == 400
    assert "paid by wire" in browser.get(f"/operator/accounts/{account}").text
    found = browser.get("/operator/accounts", params={"q": customer[-8:]}).text
    assert customer in found


def test_codes_made_here_are_redeemed_in_the_customer_console(
    aicy: AicyProcess, ops: tuple[str, httpx.Client], admin: httpx.Client
) -> None:
    _, browser = ops
    page = browser.get("/operator/codes").text
    made = browser.post(
        "/operator/codes",
        data={"csrf": _csrf(page), "action": "create", "value": "3", "count": "2", "expires_days": "30"},
    )
    assert made.status_code == 200
    codes = re.search(r'id="new-codes"[^>]*>([^<]+)<', made.text).group(1).split()  # type: ignore[union-attr]
    assert len(codes) == 2 and all(c.startswith("aicy-") for c in codes)
    assert codes[0] not in browser.get("/operator/codes").text  # shown once

    customer = _account(admin, "customer")
    with _signed_in(aicy, customer) as shopper:
        overview = shopper.get("/console").text
        done = shopper.post("/console/redeem", data={"csrf": _csrf(overview), "code": codes[0].upper()})
        assert done.status_code == 200 and 'id="redeemed"' in done.text
        assert re.search(r'id="balance">\$3\.00<', done.text)
        again = shopper.post("/console/redeem", data={"csrf": _csrf(overview), "code": codes[0]})
        assert again.status_code == 400 and "redeem" in again.text.lower()
    assert admin.get(f"/admin/accounts/{customer}").json()["balance"] == 3_000_000


def test_keys_usage_and_live_pages_render(
    aicy: AicyProcess, ops: tuple[str, httpx.Client], admin: httpx.Client
) -> None:
    _, browser = ops
    victim = admin.post("/admin/keys", json={"account": f"k-{time.monotonic_ns()}"}).json()
    page = browser.get("/operator/keys").text
    assert f'id="key-{victim["id"]}"' in page
    revoked = browser.post(f"/operator/keys/{victim['id']}", data={"csrf": _csrf(page), "action": "revoke"})
    assert revoked.status_code == 303
    assert (
        httpx.get(
            f"{aicy.base_url}/models", headers={"authorization": f"Bearer {victim['key']}"}, timeout=30
        ).status_code
        == 401
    )
    assert (
        browser.post("/operator/keys/key_nope", data={"csrf": _csrf(page), "action": "revoke"}).status_code
        == 404
    )
    usage = browser.get("/operator/usage", params={"days": "7", "group_by": "model"})
    assert usage.status_code == 200 and "<svg" in usage.text
    assert browser.get("/operator/usage", params={"group_by": "nonsense"}).status_code == 400
    live = browser.get("/operator/live").text
    assert '<meta http-equiv="refresh" content="5">' in live.split("</head>")[0]
    assert "<td>embedded</td>" in live


def test_accounts_are_created_with_a_console_password(
    aicy: AicyProcess, ops: tuple[str, httpx.Client]
) -> None:
    operator_name, browser = ops
    name = f"made-{time.monotonic_ns()}"
    page = browser.get("/operator/accounts").text
    short = browser.post(
        "/operator/accounts", data={"csrf": _csrf(page), "name": f"{name}-x", "password": "short"}
    )
    assert short.status_code == 400
    assert f"{name}-x" not in browser.get("/operator/accounts", params={"q": name}).text  # nothing was made
    made = browser.post(
        "/operator/accounts",
        data={"csrf": _csrf(page), "name": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert made.status_code == 303 and made.headers["location"].startswith("/operator/accounts/acct_")
    with _signed_in(aicy, f"{name}@example.com") as customer:
        assert customer.get("/console").status_code == 200
    audit = browser.get("/operator/audit").text
    assert re.search(
        rf"<td>console:{re.escape(operator_name)}</td><td>account.create</td><td>{name}</td>", audit
    )
