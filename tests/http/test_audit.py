"""Every change an operator makes through the admin API or the command line is in the audit log: who
(the admin key's id, or "cli"), when, what, and its details with secrets masked."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support import AicyProcess


def _entries(admin: httpx.Client, action: str) -> list[dict[str, Any]]:
    reply = admin.get("/admin/audit", params={"action": action, "limit": "1000"})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["data"])


def _admin_key_id(admin: httpx.Client) -> str:
    keys = admin.get("/admin/keys").json()["data"]
    token = admin.headers["authorization"].removeprefix("Bearer ")
    return next(k["id"] for k in keys if token.startswith(k["prefix"]))


def test_admin_api_changes_are_audited_under_the_key(admin: httpx.Client) -> None:
    actor = _admin_key_id(admin)
    name = f"audited-{time.monotonic_ns()}"
    made = admin.post("/admin/keys", json={"account": name, "rpm": 5})
    assert made.status_code == 201
    assert admin.post(f"/admin/accounts/{name}/topup", json={"amount": "2", "note": "n"}).status_code == 200
    assert admin.patch(f"/admin/keys/{made.json()['id']}", json={"rpm": 9}).status_code == 200
    assert admin.delete(f"/admin/keys/{made.json()['id']}").status_code == 200
    channel = {"name": f"ch-{name}", "base_url": "http://127.0.0.1:9/v1", "models": [], "api_keys": ["sk-x"]}
    assert admin.post("/admin/channels", json=channel).status_code == 201
    update = {"api_keys": ["sk-secret-new"], "priority": 2}
    assert admin.patch(f"/admin/channels/ch-{name}", json=update).status_code == 200
    assert admin.delete(f"/admin/channels/ch-{name}").status_code == 200

    key_id = made.json()["id"]
    for action, target in (
        ("key.create", key_id),
        ("account.topup", name),
        ("key.update", key_id),
        ("key.revoke", key_id),
        ("channel.add", f"ch-{name}"),
        ("channel.update", f"ch-{name}"),
        ("channel.remove", f"ch-{name}"),
    ):
        found = [e for e in _entries(admin, action) if e["target"] == target]
        assert len(found) == 1, action
        assert found[0]["actor"] == actor
    updated = next(e for e in _entries(admin, "channel.update") if e["target"] == f"ch-{name}")
    assert updated["details"] == {"api_keys": "***", "priority": 2}
    added = next(e for e in _entries(admin, "channel.add") if e["target"] == f"ch-{name}")
    assert "sk-x" not in str(added["details"])
    assert next(e for e in _entries(admin, "account.topup") if e["target"] == name)["details"]["note"] == "n"


def test_a_refused_change_is_not_audited(admin: httpx.Client) -> None:
    name = f"refused-{time.monotonic_ns()}"
    assert admin.post(f"/admin/accounts/{name}/topup", json={"amount": "2"}).status_code == 404
    assert admin.post("/admin/accounts", json={"name": name}).status_code == 201
    assert admin.post(f"/admin/accounts/{name}/topup", json={"amount": "-2"}).status_code == 400
    assert not [e for e in _entries(admin, "account.topup") if e["target"] == name]
    assert [e for e in _entries(admin, "account.create") if e["target"] == name]


def test_command_line_changes_are_audited_as_cli(aicy: AicyProcess, admin: httpx.Client) -> None:
    name = f"cli-{time.monotonic_ns()}"
    aicy.cli("accounts", "create", name)
    aicy.cli("accounts", "topup", name, "3", "--note", "by hand")
    entries = [e for e in _entries(admin, "account.topup") if e["target"] == name]
    assert len(entries) == 1 and entries[0]["actor"] == "cli"
    assert entries[0]["details"]["amount"] == "3" and entries[0]["details"]["note"] == "by hand"
    assert next(e for e in _entries(admin, "account.create") if e["target"] == name)["actor"] == "cli"
