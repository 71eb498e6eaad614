"""Top-up codes: operators make and revoke batches (admin API, CLI, later the console); customers redeem.

Inputs follow the admin API's rules (``serving.accounts_admin``): a code's value is an integer of micro-units
or a decimal string of the account currency (``"10"`` is 10 units, as ``aicy accounts topup`` reads it),
positive; a batch holds 1 to ``MAX_BATCH`` codes; notes are at most 1000 characters without NUL.

A redeem that fails says why with its own ``code`` (``code_not_found``, ``code_already_redeemed``,
``code_expired``, ``code_revoked``); an unknown and a revoked code share one message, so a guesser learns
nothing from it. Failed redeems are limited per account and per client IP (``accounting.failures``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from aicy.accounting.failures import FailureLimiter
from aicy.domain.codes import canonical_code, code_hint, generate_code, hash_code
from aicy.errors import InvalidRequest, NotFound
from aicy.protocol.ids import new_id
from aicy.protocol.validation import parse_model, stored_text, text_problem
from aicy.serving.accounts_admin import MAX_UNIX_TIME, Amount, Note, account_json
from aicy.storage.audit import Change
from aicy.storage.billing import BalanceTooLarge
from aicy.storage.codes import (
    STATUSES,
    BatchSpec,
    BatchSummary,
    CodeRecord,
    CodeRefused,
    NewCode,
    Redeemed,
    Status,
    TopupCodeStore,
)

MAX_BATCH = 10_000
ID_LENGTH = 64  # topup_codes.id and batch_id
MAX_FAILURES = 10
FAILURE_WINDOW = 600.0
"""Failed redeems allowed per account and per client IP within the window (seconds)."""

_UNKNOWN = "This code is not valid. Check that it is typed in full; codes look like aicy-xxxxx-xxxxx-…"
_REFUSALS: dict[str, tuple[str, str]] = {
    "not_found": ("code_not_found", _UNKNOWN),
    "revoked": ("code_revoked", _UNKNOWN),  # the same words as unknown: nothing to learn from guessing
    "redeemed": ("code_already_redeemed", "This code has already been redeemed; a code can be used once."),
    "expired": ("code_expired", "This code has expired and can no longer be redeemed."),
}


def refusal_error(refused: CodeRefused, param: str = "code") -> InvalidRequest:
    code, message = _REFUSALS[refused.reason]
    return InvalidRequest(message, param=param, code=code)


BatchId = Annotated[str, Field(min_length=1), AfterValidator(stored_text(ID_LENGTH))]
CodeText = Annotated[str, Field(min_length=1), AfterValidator(stored_text(200))]


class BatchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Amount
    count: Annotated[int, Field(strict=True, ge=1, le=MAX_BATCH)] = 1
    expires_at: Annotated[int | None, Field(strict=True, ge=0, le=MAX_UNIX_TIME)] = None
    note: Note | None = None


class RevokeInput(BaseModel):
    """Either a batch (its unused codes) or one code, given as its text or its id."""

    model_config = ConfigDict(extra="forbid")

    batch: BatchId | None = None
    code: CodeText | None = None


class RedeemInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CodeText


@dataclass(frozen=True, slots=True)
class NewBatch:
    summary: BatchSummary
    codes: list[str]  # in clear: shown this once


def batch_json(batch: BatchSummary) -> dict[str, Any]:
    return {
        "object": "topup_code.batch",
        "id": batch.id,
        "value": batch.value,
        "unit": "micro-USD",
        "created_at": batch.created_at,
        "expires_at": batch.expires_at,
        "note": batch.note,
        "count": batch.count,
        "unused": batch.unused,
        "redeemed": batch.redeemed,
        "revoked": batch.revoked,
        "expired": batch.expired,
    }


def code_json(code: CodeRecord) -> dict[str, Any]:
    return {
        "object": "topup_code",
        "id": code.id,
        "hint": code.hint,
        "batch": code.batch_id,
        "value": code.value,
        "status": code.status,
        "created_at": code.created_at,
        "expires_at": code.expires_at,
        "redeemed_at": code.redeemed_at,
        "redeemed_by": code.redeemed_by,
        "revoked_at": code.revoked_at,
        "note": code.note,
    }


def redemption_json(done: Redeemed) -> dict[str, Any]:
    account = account_json(done.account)
    return {
        "object": "topup_code.redemption",
        "credited": done.value,
        "balance": account["balance"],
        "available": account["available"],
        "unit": "micro-USD",
    }


def _new_codes(count: int) -> tuple[list[str], list[NewCode]]:
    shown, stored = [], []
    for _ in range(count):
        code = generate_code()
        canonical = canonical_code(code)
        assert canonical is not None
        shown.append(code)
        stored.append(NewCode(new_id("code_", 8), hash_code(canonical), code_hint(canonical)))
    return shown, stored


def _status(value: str | None) -> Status | None:
    if value is None:
        return None
    for status in STATUSES:
        if value == status:
            return status
    raise InvalidRequest(
        f"status must be one of {', '.join(STATUSES)}.", param="status", code="invalid_value"
    )


class CodesAdmin:
    """The operators' use cases; ``actor`` is who asks (an admin key's id, or ``"cli"``)."""

    def __init__(self, store: TopupCodeStore) -> None:
        self.store = store

    async def create(self, body: Any, actor: str, now: int) -> NewBatch:
        spec = parse_model(BatchInput, body)
        if spec.value <= 0:
            raise InvalidRequest("A code's value must be positive.", param="value", code="invalid_value")
        if spec.expires_at is not None and spec.expires_at <= now:
            raise InvalidRequest("expires_at is already past.", param="expires_at", code="invalid_value")
        batch = BatchSpec(new_id("batch_", 8), spec.value, spec.expires_at, spec.note)
        shown, stored = await asyncio.to_thread(_new_codes, spec.count)  # ~30 µs a code: off the loop
        details = {"value": spec.value, "count": spec.count, "expires_at": spec.expires_at, "note": spec.note}
        created = await self.store.create_batch(
            batch, stored, Change(actor, "codes.create", batch.id, details)
        )
        summary = BatchSummary(
            batch.id, batch.value, created, batch.expires_at, batch.note, spec.count, spec.count, 0, 0, 0
        )
        return NewBatch(summary, shown)

    async def batches(self) -> list[BatchSummary]:
        return await self.store.batches()

    async def codes(self, batch: str | None, status: str | None, limit: int) -> list[CodeRecord]:
        if batch is not None and text_problem(batch, ID_LENGTH):
            raise NotFound(f"No batch '{batch}'.", code="batch_not_found")
        found = await self.store.codes(batch, _status(status), limit)
        if batch is not None and not found and not await self.store.codes(batch, None, 1):
            raise NotFound(f"No batch '{batch}'.", code="batch_not_found")
        return found

    async def revoke(self, body: Any, actor: str) -> int:
        """Revoke a batch's unused codes or one code; how many were revoked now."""
        spec = parse_model(RevokeInput, body)
        if (spec.batch is None) == (spec.code is None):
            raise InvalidRequest(
                "Give either 'batch' (revokes its unused codes) or 'code' (one code, or its id).",
                code="invalid_value",
            )
        if spec.batch is not None:
            change = Change(actor, "codes.revoke", spec.batch, {"batch": spec.batch})
            try:
                return await self.store.revoke_batch(spec.batch, change)
            except LookupError:
                raise NotFound(f"No batch '{spec.batch}'.", param="batch", code="batch_not_found") from None
        assert spec.code is not None
        canonical = canonical_code(spec.code)
        match = spec.code if canonical is None else hash_code(canonical)
        change = Change(actor, "codes.revoke", None, {})  # the store names the code by its id
        try:
            return await self.store.revoke_code(match, change)
        except CodeRefused as refused:
            if refused.reason == "redeemed":
                raise InvalidRequest(
                    "This code has already been redeemed and cannot be revoked.",
                    param="code",
                    code="code_already_redeemed",
                ) from None
            raise NotFound("No such code.", param="code", code="code_not_found") from None


class Redemptions:
    """Customers redeeming codes into their own account, with failed attempts limited."""

    def __init__(self, store: TopupCodeStore, limiter: FailureLimiter) -> None:
        self.store = store
        self.limiter = limiter

    async def redeem(self, account_id: str, client_ip: str | None, body: Any) -> Redeemed:
        subjects = [f"account:{account_id}"] + ([f"ip:{client_ip}"] if client_ip else [])
        self.limiter.check(subjects, "code redemptions")
        spec = parse_model(RedeemInput, body)
        canonical = canonical_code(spec.code)
        try:
            if canonical is None:
                raise CodeRefused("not_found")
            return await self.store.redeem(hash_code(canonical), account_id)
        except CodeRefused as refused:
            self.limiter.fail(subjects)
            raise refusal_error(refused) from None
        except BalanceTooLarge:
            raise InvalidRequest(
                "The code's value would take the balance above the largest balance aicy keeps.",
                param="code",
                code="amount_out_of_range",
            ) from None
