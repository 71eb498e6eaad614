"""``aicy codes``: create batches (printed once, or as CSV), list them, revoke; the same rules as the admin
API, and the server redeems what the CLI made."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import AicyProcess

SHAPE = re.compile(r"aicy(-[0-9a-hjkmnp-tv-z]{5}){5}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    proc = AicyProcess(Path(tmp_path_factory.mktemp("cli-codes")), extra_env={"AICY_ENGINE_ENABLED": "false"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def ops(server: AicyProcess) -> Iterator[httpx.Client]:
    key = server.cli("keys", "create", "--admin", "--name", "ops").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.root_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        yield c


def fails(server: AicyProcess, *args: str) -> str:
    """Runs a command that must fail cleanly: exit 1, a message, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "aicy", *args], env=server.env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout + done.stderr


def redeem(ops: httpx.Client, account: str, code: str) -> httpx.Response:
    key = ops.post("/admin/keys", json={"account": account, "name": "k"}).json()["key"]
    return httpx.post(
        f"{ops.base_url}/v1/dashboard/billing/redeem",
        json={"code": code},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_create_prints_codes_once_and_they_redeem(server: AicyProcess, ops: httpx.Client) -> None:
    done = server.cli(
        "codes", "create", "--value", "10", "--count", "5", "--expires", "90d", "--note", "shop"
    )
    codes = done.stdout.split()
    assert len(codes) == 5 and all(SHAPE.fullmatch(c) for c in codes), done.stdout
    batch = re.search(r"batch (batch_\w+)", done.stderr)
    assert batch is not None, done.stderr
    reply = redeem(ops, "cli-customer", codes[0])
    assert reply.status_code == 200 and reply.json()["credited"] == 10_000_000  # "10" is 10 units

    listing = server.cli("codes", "list").stdout
    row = next(line for line in listing.splitlines() if batch.group(1) in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[4:] == ["5", "4", "1", "0", "0", "shop"], row  # count, unused, redeemed, revoked, expired
    codes_listing = server.cli("codes", "list", "--batch", batch.group(1)).stdout
    assert "redeemed" in codes_listing and not any(code in codes_listing for code in codes)
    assert "cli-customer" not in codes_listing  # accounts by id

    assert "Revoked 1 code(s)" in server.cli("codes", "revoke", codes[1].upper()).stdout
    assert "Revoked 3 code(s)" in server.cli("codes", "revoke", "--batch", batch.group(1)).stdout
    assert "already been redeemed" in fails(server, "codes", "revoke", codes[0])
    assert redeem(ops, "cli-customer", codes[2]).json()["error"]["code"] == "code_revoked"
    audit = ops.get("/admin/audit").json()["data"]
    mine = [
        (e["actor"], e["action"]) for e in audit if batch.group(1) in (e["target"], e["details"].get("batch"))
    ]
    assert mine == [("cli", "codes.revoke"), ("cli", "codes.revoke"), ("cli", "codes.create")]


def test_create_as_csv(server: AicyProcess) -> None:
    out = server.cli("codes", "create", "--value", "12.5", "--count", "3", "--expires", "2040-01-01", "--csv")
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["code", "value", "expires_at", "batch"]
    assert len(rows) == 4 and len({r[3] for r in rows[1:]}) == 1
    for code, value, expires_at, batch in rows[1:]:
        assert SHAPE.fullmatch(code) and value == "12.5" and expires_at == "2040-01-01T00:00:00Z"
        assert batch.startswith("batch_")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--value", "0"), "positive"),
        (("--value", "-5"), "positive"),
        (("--value", "９"), "not an amount"),
        (("--value", "1.0000001"), "6 decimal places"),
        (("--value", "10", "--count", "10001"), "count"),
        (("--value", "10", "--count", "0"), "count"),
        (("--value", "10", "--expires", "yesterday"), "--expires"),
        (("--value", "10", "--expires", "2001-01-01"), "past"),
        (("--value", "10", "--note", "n" * 1001), "note"),
    ],
)
def test_create_refuses_what_the_admin_api_refuses(
    server: AicyProcess, ops: httpx.Client, args: tuple[str, ...], says: str
) -> None:
    before = ops.get("/admin/codes").json()["data"]
    assert says in fails(server, "codes", "create", *args)
    assert ops.get("/admin/codes").json()["data"] == before


def test_revoke_needs_one_target(server: AicyProcess) -> None:
    assert "either" in fails(server, "codes", "revoke")
    assert "No batch" in fails(server, "codes", "revoke", "--batch", "batch_nope")
    assert "No such code" in fails(server, "codes", "revoke", "aicy-00000-00000-00000-00000-00000")
    assert "status must be one of" in fails(server, "codes", "list", "--status", "bogus")
