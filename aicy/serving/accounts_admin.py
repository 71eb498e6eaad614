"""Operators' use cases for accounts, keys and usage, shared by the admin HTTP API and the CLI.

Every input is checked here, before anything is written: names and notes fit their columns and hold no NUL,
amounts are integers of micro-units or decimal strings of USD within ``money.MAX_AMOUNT`` (never booleans,
floats or non-ASCII digits), rates and times fit their columns.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from aicy.accounting.money import AmountError, amount_from_json
from aicy.domain.keys import SETTABLE_FIELDS, KeyPolicy, Role, policy_from, policy_json, policy_kind
from aicy.errors import InvalidRequest, NotFound
from aicy.protocol.validation import parse_model, stored_text, text_problem
from aicy.storage.billing import (
    GROUPS,
    BalanceTooLarge,
    BillingStore,
    Credited,
    Idempotency,
    IdempotencyKeyReused,
    NotEnoughFunds,
    ledger_entries,
    usage_report,
)
from aicy.storage.keys import AccountRecord, KeyRecord, KeyStore, policy_columns

NAME_LENGTH = 200  # accounts.name and api_keys.name
NOTE_LENGTH = 1000
IDEMPOTENCY_KEY_LENGTH = 200  # idempotency_keys.key
MAX_INT32 = 2**31 - 1  # rpm and tpm are INTEGER columns
MAX_UNIX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z

Name = Annotated[str, Field(min_length=1), AfterValidator(stored_text(NAME_LENGTH))]
Note = Annotated[str, AfterValidator(stored_text(NOTE_LENGTH))]


def _amount(value: Any) -> int:
    try:
        return amount_from_json(value)
    except AmountError as exc:
        raise PydanticCustomError(exc.code, str(exc)) from None


def _spend_limit(value: Any) -> int | None:
    if value is None:
        return None
    micros = _amount(value)
    if micros < 0:
        raise PydanticCustomError("invalid_value", "a spend limit cannot be negative")
    return micros


def _networks(value: list[str] | None) -> list[str] | None:
    for network in value or []:
        ipaddress.ip_network(network, strict=False)  # a ValueError here is a 400 naming the entry
    return value


Amount = Annotated[int, BeforeValidator(_amount)]

# How each kind of KeyPolicy field is taken as input (see aicy.domain.keys.KeyPolicy).
_POLICY_INPUT: dict[str, Any] = {
    "unix_time": Annotated[int | None, Field(strict=True, ge=0, le=MAX_UNIX_TIME)],
    "names": list[Name] | None,
    "networks": Annotated[list[str] | None, AfterValidator(_networks)],
    "money": Annotated[int | None, BeforeValidator(_spend_limit)],
    "per_minute": Annotated[int | None, Field(strict=True, ge=1, le=MAX_INT32)],
    "flag": Annotated[bool, Field(strict=True)],
}


class KeyInputBase(BaseModel):
    """A key's name, account and role; ``KeyInput`` adds one field per settable ``KeyPolicy`` field.

    Money as a decimal string ("12.5", account currency) or integer micro-units."""

    model_config = ConfigDict(extra="forbid")

    account: Name = "default"
    name: Name = "key"
    role: Role = "customer"

    def policy(self) -> KeyPolicy:
        return policy_from({name: getattr(self, name) for name in SETTABLE_FIELDS})


_policy_inputs: dict[str, Any] = {
    name: (_POLICY_INPUT[policy_kind(name)], getattr(KeyPolicy(), name)) for name in SETTABLE_FIELDS
}
KeyInput = create_model("KeyInput", __base__=KeyInputBase, **_policy_inputs)
_PATCHABLE = frozenset(KeyInput.model_fields) - {"account", "role"}


class AccountInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class CreditInput(BaseModel):
    """A top-up or an adjustment: an integer of micro-units or a decimal string of USD."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    note: Note | None = None


def key_json(record: KeyRecord) -> dict[str, Any]:
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
        **policy_json(record.policy),
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


def idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 200 printable ASCII characters, or absent."""
    if value is None:
        return None
    if not 0 < len(value) <= IDEMPOTENCY_KEY_LENGTH or not all(" " < c <= "~" for c in value):
        raise InvalidRequest(
            f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_LENGTH} printable ASCII characters.",
            param="Idempotency-Key",
            code="invalid_value",
        )
    return value


def _fingerprint(reason: str, account_id: str, amount: int, note: str | None) -> str:
    what = {"operation": reason, "account": account_id, "amount": amount, "note": note}
    return hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()


class AccountsAdmin:
    def __init__(self, keys: KeyStore, billing: BillingStore) -> None:
        self.keys = keys
        self.billing = billing

    async def account(self, name_or_id: str) -> AccountRecord:
        found = None if text_problem(name_or_id, NAME_LENGTH) else await self.keys.account(name_or_id)
        if found is None:
            raise NotFound(f"No account '{name_or_id}'.", code="account_not_found")
        return found

    async def create_account(self, body: Any) -> AccountRecord:
        spec = parse_model(AccountInput, body)
        return await self.account(await self.keys.ensure_account(spec.name))

    async def credit(
        self, name_or_id: str, body: Any, reason: str, idempotency: str | None = None
    ) -> Credited:
        """A top-up (``reason`` "topup": positive only) or an adjustment (either sign), once per
        idempotency key: the same key again returns the first result, with another request it is a 409."""
        key = idempotency_key(idempotency)
        spec = parse_model(CreditInput, body)
        if reason == "topup" and spec.amount <= 0:
            raise InvalidRequest("A top-up must be positive.", param="amount", code="invalid_value")
        account = await self.account(name_or_id)
        fingerprint = _fingerprint(reason, account.id, spec.amount, spec.note)
        try:
            return await self.billing.credit(
                account.id,
                spec.amount,
                reason,
                spec.note,
                None if key is None else Idempotency(key, fingerprint),
            )
        except NotEnoughFunds:
            raise InvalidRequest(
                "The adjustment would take the available balance below zero.",
                param="amount",
                code="insufficient_balance",
            ) from None
        except BalanceTooLarge:
            raise InvalidRequest(
                "The credit would take the balance above the largest balance aicy keeps.",
                param="amount",
                code="amount_out_of_range",
            ) from None
        except IdempotencyKeyReused:
            raise InvalidRequest(
                "This Idempotency-Key was already used for a different request. Use a new key for a new "
                "request, or send the same request again to get its result.",
                param="Idempotency-Key",
                code="idempotency_key_reused",
                status=409,
            ) from None

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
        for field in body:
            if field not in _PATCHABLE | {"enabled", "unsuspend"}:
                raise InvalidRequest(
                    f"Unknown parameter: '{field}' (a key's account and role cannot be changed).",
                    param=field,
                    code="unknown_parameter",
                )
        for flag in ("enabled", "unsuspend"):
            if flag in body and not isinstance(body[flag], bool):
                raise InvalidRequest(f"'{flag}' must be true or false.", param=flag, code="invalid_type")
        values: dict[str, Any] = {}
        if "enabled" in body:
            values["enabled"] = body["enabled"]
        if body.get("unsuspend"):
            values.update(suspended_at=None, suspended_reason=None)
        limits = {k: v for k, v in body.items() if k in _PATCHABLE}
        if limits:
            merged = {**key_json(current), **limits}
            spec = parse_model(KeyInput, {k: merged[k] for k in _PATCHABLE})
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
