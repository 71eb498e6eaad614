"""What a signed-in customer sees and does in the web console: sign-in and registration, balance and ledger,
usage (charts, the request log, CSV), and their own API keys.

Every read and change is scoped to the signed-in account: a key id of another account is "not found".
Key limits are checked by the same input rules as the admin API (``KeyInput``).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from typing import Any

from aicy.accounting.failures import FailureLimiter
from aicy.accounting.passwords import hash_password, password_problem, verify_password
from aicy.domain.codes import canonical_code, hash_code
from aicy.errors import AicyError, InvalidRequest, NotFound
from aicy.protocol.validation import text_problem
from aicy.serving.accounts_admin import NAME_LENGTH, AccountsAdmin
from aicy.serving.codes import refusal_error
from aicy.serving.services import Services
from aicy.storage.billing import ledger_entries, usage_report
from aicy.storage.codes import CodeRefused
from aicy.storage.keys import AccountRecord, KeyRecord, KeyStore
from aicy.storage.logins import Login, LoginStore, NameTaken
from aicy.storage.usage_query import LOG_COLUMNS, LogFilter, log_page, log_values

LOGIN_WINDOW_SECONDS = 600
PERIODS = (1, 7, 30, 90, 365)
PAGE_SIZE = 50
EMAIL_LENGTH = 320


class SignInRefused(AicyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_credentials"


@dataclass(frozen=True, slots=True)
class UsageView:
    days: int
    daily: list[dict[str, Any]]  # oldest day first
    by_model: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    models: list[str]
    keys: list[str]
    statuses: list[str]


def _field(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def _list(value: str) -> list[str] | None:
    items = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    return items or None


def whole_number(value: str, param: str) -> int | None:
    """A whole number typed in a form: ASCII digits only (``int`` also takes '٣' and '²')."""
    value = value.strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise InvalidRequest(f"'{param}' must be a whole number.", param=param, code="invalid_value")
    return int(value)


class Console:
    def __init__(self, services: Services, logins: LoginStore, failures: FailureLimiter) -> None:
        self.services = services
        self.logins = logins
        self.failures = failures
        self.admin = AccountsAdmin(services.keys, services.billing)

    # --- signing in

    async def sign_in(self, name: str, password: str, client_ip: str) -> Login:
        """The account, when ``name`` (or e-mail) and ``password`` match; failures are counted per client
        IP and per name, and past the limit every attempt is refused until the window moves on."""
        name = name.strip()
        keys = [f"ip:{client_ip}", f"name:{name.lower()[:NAME_LENGTH]}"]
        self.failures.check(keys, "sign-ins")
        found = None if text_problem(name, EMAIL_LENGTH) or not name else await self.logins.find(name)
        if not await verify_password(found.password_hash if found else None, password) or found is None:
            self.failures.fail(keys)
            raise SignInRefused("The name or password is not right.")
        self.failures.clear(keys[1])
        return found

    async def current(self, account_id: str, epoch: int) -> Login | None:
        """The signed-in account, if the session is still good (no password change since)."""
        found = await self.logins.by_id(account_id)
        return found if found is not None and found.epoch == epoch and found.password_hash else None

    async def register(
        self,
        name: str,
        email: str,
        password: str,
        invite: str | None = None,
        client_ip: str | None = None,
        code_failures: FailureLimiter | None = None,
    ) -> Login:
        """A new account that is signed in at once. With ``invite`` (``AICY_REGISTRATION=invite``), a top-up
        code is redeemed into it in the same transaction: a code that cannot be redeemed creates nothing,
        and counts as a failed code attempt for the client's address."""
        name, email = name.strip(), email.strip().lower()
        problem = text_problem(name, NAME_LENGTH) or (None if name else "A name is required.")
        if problem:
            raise InvalidRequest(problem, param="name")
        if email and (text_problem(email, EMAIL_LENGTH) or "@" not in email):
            raise InvalidRequest("That e-mail address does not look right.", param="email")
        problem = password_problem(password)
        if problem:
            raise InvalidRequest(problem, param="password")
        code_hash = None
        subjects = [f"ip:{client_ip}"] if client_ip else []
        if invite is not None:
            if code_failures is not None:
                code_failures.check(subjects, "invite codes")
            canonical = canonical_code(invite)
            code_hash = hash_code(canonical) if canonical else "-"  # "-" matches no code
        try:
            account_id = await self.logins.register(
                name, email or None, await hash_password(password), code_hash
            )
        except NameTaken:
            raise InvalidRequest(
                "That name or e-mail is taken.", param="name", code="account_exists"
            ) from None
        except CodeRefused as refused:
            if code_failures is not None:
                code_failures.fail(subjects)
            raise refusal_error(refused, "invite") from None
        found = await self.logins.by_id(account_id)
        assert found is not None
        return found

    # --- balance

    async def account(self, account_id: str) -> AccountRecord:
        return await self.admin.account(account_id)

    async def charges_by_day(self, account_id: str, days: int = 30) -> list[dict[str, Any]]:
        """Requests and what they cost, per UTC day, newest first."""
        until = int(time.time()) + 1
        return await usage_report(
            self.services.billing.engine, "day", account_id, until - days * 86_400, until
        )

    async def ledger(self, account_id: str) -> list[dict[str, Any]]:
        return await ledger_entries(self.services.billing.engine, account_id, limit=200)

    # --- usage

    async def usage(self, account_id: str, query: dict[str, str]) -> UsageView:
        days = whole_number(query.get("days", ""), "days") or 30
        if days not in PERIODS:
            raise InvalidRequest(f"'days' must be one of {', '.join(map(str, PERIODS))}.", param="days")
        page = max(1, whole_number(query.get("page", ""), "page") or 1)
        wanted = self._filter(account_id, days, query)
        engine = self.services.billing.engine
        daily = await usage_report(engine, "day", account_id, wanted.since, wanted.until)
        by_model = await usage_report(engine, "model", account_id, wanted.since, wanted.until)
        lines, total = await log_page(engine, wanted, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        return UsageView(
            days=days,
            daily=list(reversed(daily)),
            by_model=by_model,
            lines=lines,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            models=await log_values(engine, account_id, "model"),
            keys=await log_values(engine, account_id, "key_id"),
            statuses=await log_values(engine, account_id, "status"),
        )

    async def usage_csv(self, account_id: str, query: dict[str, str]) -> str:
        days = whole_number(query.get("days", ""), "days") or 30
        wanted = self._filter(account_id, min(days, PERIODS[-1]), query)
        lines, _ = await log_page(self.services.billing.engine, wanted, 0, 100_000)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["time_utc", *LOG_COLUMNS[1:]])
        for line in lines:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(line["created_at"] / 1000))
            writer.writerow([when, *(_cell(line[c]) for c in LOG_COLUMNS[1:])])
        return out.getvalue()

    @staticmethod
    def _filter(account_id: str, days: int, query: dict[str, str]) -> LogFilter:
        until = int(time.time()) + 1
        return LogFilter(
            account_id=account_id,
            since=until - days * 86_400,
            until=until,
            model=query.get("model") or None,
            key_id=query.get("key") or None,
            status=query.get("status") or None,
        )

    # --- keys

    async def keys(self, account_id: str) -> list[KeyRecord]:
        return await self.services.keys.list_keys(account_id)

    async def create_key(self, login: Login, form: dict[str, str]) -> tuple[KeyRecord, str]:
        days = whole_number(_field(form, "expires_days"), "expires_days")
        body: dict[str, Any] = {
            "account": login.name,
            "name": _field(form, "name") or "console",
            "role": "customer",
            "models": _list(_field(form, "models")),
            "ips": _list(_field(form, "ips")),
            "expires_at": int(time.time()) + days * 86_400 if days else None,
            "rpm": whole_number(_field(form, "rpm"), "rpm"),
            "tpm": whole_number(_field(form, "tpm"), "tpm"),
        }
        for limit in ("spend_limit", "spend_limit_daily", "spend_limit_monthly"):
            value = _field(form, limit)
            body[limit] = value or None  # a decimal string of USD, checked by the admin API's rules
        return await self.admin.create_key(body)

    async def revoke_key(self, account_id: str, key_id: str) -> None:
        owned = [k for k in await self.keys(account_id) if k.id == key_id]
        if not owned:
            raise NotFound("No such key.", code="key_not_found")
        await self.services.keys.revoke(key_id)
        self.services.key_cache.clear()


def _cell(value: Any) -> Any:
    """CSV cells that a spreadsheet would run as a formula are quoted as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


async def set_login(
    keys: KeyStore, logins: LoginStore, account: str, password: str, email: str | None = None
) -> AccountRecord:
    """An operator gives an account a console password (and optionally a sign-in e-mail); any session of
    that account signed before ends."""
    record = await keys.account(account) if not text_problem(account, NAME_LENGTH) else None
    if record is None:
        raise NotFound(f"No account '{account}'.", code="account_not_found")
    problem = password_problem(password)
    if problem:
        raise InvalidRequest(problem, param="password")
    if email is not None:
        email = email.strip().lower()
        if text_problem(email, EMAIL_LENGTH) or "@" not in email:
            raise InvalidRequest("That e-mail address does not look right.", param="email")
        other = await logins.find(email)
        if other is not None and other.account_id != record.id:
            raise InvalidRequest(
                "That e-mail is used by another account.", param="email", code="account_exists"
            )
        await logins.set_email(record.id, email)
    await logins.set_password(record.id, await hash_password(password))
    return record
