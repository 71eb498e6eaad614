"""The customer console against a real aicy: sign-in with argon2 passwords and signed cookies, CSRF on
every form, rate-limited guessing, balance and ledger, usage with its log and CSV, keys made and revoked,
and nothing of another account reachable."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.support import MODEL, AicyProcess

PASSWORD = "correct horse battery"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


def _browser(aicy: AicyProcess) -> httpx.Client:
    return httpx.Client(base_url=aicy.root_url, timeout=60, follow_redirects=False)


def _sign_in(browser: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    form = browser.get("/console/login")
    assert form.status_code == 200
    return browser.post("/console/login", data={"csrf": _csrf(form.text), "name": name, "password": password})


@pytest.fixture
def customer(aicy: AicyProcess, admin: httpx.Client) -> tuple[str, str]:
    """A new account with money, a key and a console password: (name, key)."""
    name = f"console-{time.monotonic_ns()}"
    created = admin.post("/admin/keys", json={"account": name, "name": "first"})
    assert created.status_code == 201, created.text
    assert admin.post(f"/admin/accounts/{name}/topup", json={"amount": "25"}).status_code == 200
    login = admin.post(
        f"/admin/accounts/{name}/login", json={"password": PASSWORD, "email": f"{name}@Ex.com"}
    )
    assert login.status_code == 200, login.text
    return name, created.json()["key"]


def test_sign_in_sets_a_strict_session_cookie_and_shows_the_balance(
    aicy: AicyProcess, customer: tuple[str, str]
) -> None:
    name, _ = customer
    with _browser(aicy) as browser:
        assert browser.get("/console").headers["location"] == "/console/login"
        refused = _sign_in(browser, name, "wrong password")
        assert refused.status_code == 401 and "not right" in refused.text
        signed = _sign_in(browser, f"{name}@ex.com")  # the e-mail works too, in any case
        assert signed.status_code == 303 and signed.headers["location"] == "/console"
        cookie = signed.headers["set-cookie"]
        assert "aicy_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Path=/console" in cookie
        overview = browser.get("/console")
        assert overview.status_code == 200
        assert re.search(r'id="balance">\$25\.00<', overview.text)
        assert "topup" in overview.text
        assert "frame-ancestors 'none'" in overview.headers["content-security-policy"]


def test_forms_need_their_csrf_token(aicy: AicyProcess, customer: tuple[str, str]) -> None:
    name, _ = customer
    with _browser(aicy) as browser:
        no_token = browser.post("/console/login", data={"name": name, "password": PASSWORD})
        assert no_token.status_code == 403
        assert _sign_in(browser, name).status_code == 303
        made = browser.post("/console/keys", data={"name": "x"})
        assert made.status_code == 403
        made = browser.post("/console/keys", data={"name": "x", "csrf": "forged"})
        assert made.status_code == 403
        assert "x" not in [
            k for k in re.findall(r"<td>([^<]*)</td><td><code>", browser.get("/console/keys").text)
        ]


def test_a_tampered_or_superseded_session_is_signed_out(
    aicy: AicyProcess, admin: httpx.Client, customer: tuple[str, str]
) -> None:
    name, _ = customer
    with _browser(aicy) as browser:
        assert _sign_in(browser, name).status_code == 303
        token = browser.cookies["aicy_session"]
        with _browser(aicy) as forger:
            forger.cookies.set(
                "aicy_session", token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), path="/console"
            )
            assert forger.get("/console").status_code == 303
        assert browser.get("/console").status_code == 200
        assert (
            admin.post(f"/admin/accounts/{name}/login", json={"password": "a new password"}).status_code
            == 200
        )
        assert browser.get("/console").status_code == 303  # the password changed: older sessions end
        assert _sign_in(browser, name).status_code == 401
        assert _sign_in(browser, name, "a new password").status_code == 303


def test_keys_are_made_shown_once_and_revoked(aicy: AicyProcess, customer: tuple[str, str]) -> None:
    name, _ = customer
    with _browser(aicy) as browser:
        assert _sign_in(browser, name).status_code == 303
        page = browser.get("/console/keys").text
        bad = browser.post("/console/keys", data={"csrf": _csrf(page), "name": "k", "rpm": "٣"})
        assert bad.status_code == 400 and "whole number" in bad.text
        bad = browser.post("/console/keys", data={"csrf": _csrf(page), "name": "k", "spend_limit": "-5"})
        assert bad.status_code == 400
        made = browser.post(
            "/console/keys",
            data={"csrf": _csrf(page), "name": "ci", "models": MODEL, "rpm": "7", "spend_limit": "1.5"},
        )
        assert made.status_code == 200, made.text
        secret = html.unescape(re.search(r'id="new-key">([^<]+)<', made.text).group(1))  # type: ignore[union-attr]
        assert "rpm: 7" in made.text and "spend: $1.50" in made.text
        assert secret not in browser.get("/console/keys").text  # shown once
        client = OpenAI(base_url=aicy.base_url, api_key=secret, max_retries=0)
        assert [m.id for m in client.models.list()] == [MODEL]
        key_id = re.search(r'id="key-(key_[0-9a-f]+)"[^>]*>\s*<td>ci</td>', made.text).group(1)  # type: ignore[union-attr]
        revoked = browser.post(f"/console/keys/{key_id}/revoke", data={"csrf": _csrf(made.text)})
        assert revoked.status_code == 303
        time.sleep(1.2)  # the key cache's lifetime
        with pytest.raises(Exception) as info:
            client.models.list()
        assert getattr(info.value, "status_code", None) == 401


def test_another_accounts_key_cannot_be_revoked(
    aicy: AicyProcess, admin: httpx.Client, customer: tuple[str, str]
) -> None:
    name, _ = customer
    victim = admin.post("/admin/keys", json={"account": f"victim-{time.monotonic_ns()}"}).json()
    with _browser(aicy) as browser:
        assert _sign_in(browser, name).status_code == 303
        csrf = _csrf(browser.get("/console/keys").text)
        refused = browser.post(f"/console/keys/{victim['id']}/revoke", data={"csrf": csrf})
        assert refused.status_code == 404
    assert OpenAI(base_url=aicy.base_url, api_key=victim["key"], max_retries=0).models.list().data


def test_usage_shows_the_log_charts_and_csv(aicy: AicyProcess, customer: tuple[str, str]) -> None:
    name, key = customer
    client = OpenAI(base_url=aicy.base_url, api_key=key, max_retries=0, timeout=120)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    with _browser(aicy) as browser:
        assert _sign_in(browser, name).status_code == 303
        deadline = time.monotonic() + 10
        while True:
            page = browser.get("/console/usage", params={"days": "7"}).text
            if f"<td>{MODEL}</td>" in page or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert f"<td>{MODEL}</td>" in page and "<svg" in page and "completed" in page
        assert "1 requests" in page or "共 1 条" in page
        empty = browser.get("/console/usage", params={"model": "no-such-model"}).text
        assert "共 0 条" in empty or "0 requests" in empty
        assert browser.get("/console/usage", params={"days": "²"}).status_code == 400
        exported = browser.get("/console/usage.csv", params={"days": "7"})
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert rows[0][:3] == ["time_utc", "key_id", "model"] and rows[1][2] == MODEL


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    server = AicyProcess(
        Path(tmp_path_factory.mktemp("console")),
        extra_env={"AICY_ENGINE_ENABLED": "false", "AICY_LOGIN_FAILURES": "3", "AICY_REGISTRATION": "open"},
    )
    server.start()
    yield server
    server.stop()


def test_guessing_is_rate_limited(strict_server: AicyProcess) -> None:
    strict_server.cli("accounts", "create", "guarded")
    with _browser(strict_server) as browser:
        for _ in range(3):
            assert _sign_in(browser, "guarded", "guess-guess").status_code == 401
        blocked = _sign_in(browser, "guarded", "guess-guess")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert "Too many" in blocked.text


def test_open_registration_signs_the_new_customer_in(strict_server: AicyProcess) -> None:
    with _browser(strict_server) as browser:
        form = browser.get("/console/register")
        assert form.status_code == 200
        short = browser.post(
            "/console/register", data={"csrf": _csrf(form.text), "name": "newbie", "password": "short"}
        )
        assert short.status_code == 400
        hostile = '<b>new</b>"&'
        made = browser.post(
            "/console/register", data={"csrf": _csrf(form.text), "name": hostile, "password": PASSWORD}
        )
        assert made.status_code == 303
        overview = browser.get("/console").text
        assert "<b>new</b>" not in overview and hostile in html.unescape(overview)
    with _browser(strict_server) as other:
        form = other.get("/console/register")
        taken = other.post(
            "/console/register", data={"csrf": _csrf(form.text), "name": hostile, "password": PASSWORD}
        )
        assert taken.status_code == 400 and "taken" in taken.text


def test_registration_is_closed_by_default(aicy: AicyProcess) -> None:
    assert httpx.get(f"{aicy.root_url}/console/register", timeout=30).status_code == 404
