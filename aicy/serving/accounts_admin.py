"""Operators' use cases for accounts, keys and usage, shared by the admin HTTP API and the CLI."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aicy.accounting.money import parse_usd
from aicy.domain.keys import KeyPolicy, Role
from aicy.errors import InvalidRequest, NotFound
from aicy.protocol.validation import parse_model
from aicy.storage.billing import GROUPS, BillingStore, NotEnoughFunds, ledger_entries, usage_report
from aicy.storage.keys import AccountRecord, KeyRecord, KeyStore, policy_columns


def _micros(value: int | str | None) -> int | None:
    return parse_usd(value) if isinstance(value, str) else value


class KeyInput(BaseModel):
    """A key's settings; money as a decimal string ("12.5", account currency) or integer micro-units."""

    model_config = ConfigDict(extra="forbid")

    account: str = "default"
    name: str = "key"
    role: Role = "customer"
    models: list[str] | None = None
    ips: list[str] | None = None
    expires_at: int | None = None
    spend_limit: int | str | None = None
    spend_limit_daily: int | str | None = None
    spend_limit_monthly: int | str | None = None
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    shared: bool = False

    @field_validator("spend_limit", "spend_limit_daily", "spend_limit_monthly")
    @classmethod
    def _money(cls, value: int | str | None) -> int | None:
        return _micros(value)

    @field_validator("ips")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        import ipaddress

        for network in value or []:
            ipaddress.ip_network(network, strict=False)
        return value

    def policy(self) -> KeyPolicy:
        return KeyPolicy(
            expires_at=self.expires_at,
            models=tuple(self.models) if self.models is not None else None,
            ips=tuple(self.ips) if self.ips is not None else None,
            spend_limit=_micros(self.spend_limit),
            spend_limit_daily=_micros(self.spend_limit_daily),
            spend_limit_monthly=_micros(self.spend_limit_monthly),
            rpm=self.rpm,
            tpm=self.tpm,
            shared=self.shared,
        )


def key_json(record: KeyRecord) -> dict[str, Any]:
    p = record.policy
    return {
        "id": record.id,
        "prefix": record.prefix,
        "name": record.name,
        "account_id": record.account_id,
        "account": record.account_name,
        "role": record.role,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "enabled": record.enabled,
        "expires_at": p.expires_at,
        "models": list(p.models) if p.models is not None else None,
        "ips": list(p.ips) if p.ips is not None else None,
        "spend_limit": p.spend_limit,
        "spend_limit_daily": p.spend_limit_daily,
        "spend_limit_monthly": p.spend_limit_monthly,
        "rpm": p.rpm,
        "tpm": p.tpm,
        "shared": p.shared,
        "suspended_reason": p.suspended_reason,
    }


def account_json(record: AccountRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "is_admin": record.is_admin,
        "balance": record.balance,
        "reserved": record.reserved,
        "available": record.balance - record.reserved,
        "unit": "micro-USD",
        "created_at": record.created_at,
    }


def amount_of(body: Any) -> int:
    if not isinstance(body, dict) or "amount" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'amount'.", param="amount", code="missing_required_parameter"
        )
    raw = body["amount"]
    try:
        return parse_usd(raw) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"Invalid amount: {exc}", param="amount", code="invalid_value") from None


class AccountsAdmin:
    def __init__(self, keys: KeyStore, billing: BillingStore) -> None:
        self.keys = keys
        self.billing = billing

    async def account(self, name_or_id: str) -> AccountRecord:
        found = await self.keys.account(name_or_id)
        if found is None:
            raise NotFound(f"No account '{name_or_id}'.", code="account_not_found")
        return found

    async def create_account(self, name: str) -> AccountRecord:
        return await self.account(await self.keys.ensure_account(name))

    async def credit(self, name_or_id: str, amount: int, reason: str, note: str | None) -> AccountRecord:
        account = await self.account(name_or_id)
        try:
            await self.billing.credit(account.id, amount, reason, note)
        except NotEnoughFunds:
            raise InvalidRequest(
                "The adjustment would take the available balance below zero.",
                param="amount",
                code="insufficient_balance",
            ) from None
        return await self.account(account.id)

    async def ledger(self, name_or_id: str) -> list[dict[str, Any]]:
        return await ledger_entries(self.billing.engine, (await self.account(name_or_id)).id)

    async def create_key(self, body: Any) -> tuple[KeyRecord, str]:
        spec = parse_model(KeyInput, body)
        account_id = await self.keys.ensure_account(spec.account, is_admin=spec.role == "admin")
        key_id, key = await self.keys.create_key(account_id, spec.name, spec.role, spec.policy())
        record = next(k for k in await self.keys.list_keys(account_id) if k.id == key_id)
        return record, key.secret

    async def update_key(self, key_id: str, body: Any) -> KeyRecord:
        current = await self.key(key_id)
        if not isinstance(body, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_type")
        values: dict[str, Any] = {}
        if "enabled" in body:
            values["enabled"] = bool(body["enabled"])
        if body.get("unsuspend"):
            values.update(suspended_at=None, suspended_reason=None)
        limits = {
            k: v for k, v in body.items() if k in KeyInput.model_fields and k not in ("account", "role")
        }
        if limits:
            merged = {**key_json(current), **limits}
            spec = parse_model(
                KeyInput,
                {k: merged[k] for k in KeyInput.model_fields if k in merged and k not in ("account", "role")},
            )
            values.update(policy_columns(spec.policy()))
            values["name"] = spec.name
        await self.keys.update_key(current.id, values)
        return await self.key(current.id)

    async def key(self, key_id_or_prefix: str) -> KeyRecord:
        found = [k for k in await self.keys.list_keys() if key_id_or_prefix in (k.id, k.prefix)]
        if not found:
            raise NotFound(f"No key '{key_id_or_prefix}'.", code="key_not_found")
        return found[0]

    async def usage(self, group_by: str, account: str | None, days: int) -> list[dict[str, Any]]:
        if group_by not in GROUPS:
            raise InvalidRequest(f"group_by must be one of {', '.join(GROUPS)}.", param="group_by")
        account_id = (await self.account(account)).id if account else None
        until = int(time.time()) + 1
        return await usage_report(self.billing.engine, group_by, account_id, until - days * 86_400, until)
