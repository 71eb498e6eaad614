"""The balance endpoints third-party chat clients read (OpenAI's legacy dashboard API, as New API has it),
and redeeming a top-up code with the customer's key."""

from __future__ import annotations

import datetime
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicy.accounting.failures import FailureLimiter
from aicy.accounting.money import MICROS_PER_USD
from aicy.http.auth import authenticate, client_ip
from aicy.http.body import read_json
from aicy.http.routes import json_response, services_of
from aicy.serving.codes import FAILURE_WINDOW, MAX_FAILURES, Redemptions, redemption_json
from aicy.storage.codes import TopupCodeStore

CENTS = MICROS_PER_USD // 100


async def subscription(request: Request) -> Response:
    """``hard_limit_usd`` is what the account can still spend (its available balance)."""
    services = services_of(request)
    principal = await authenticate(request, services)
    await services.billing.settled()
    balance, reserved = await services.billing.balance(principal.account_id)
    available = (balance - reserved) / MICROS_PER_USD
    return json_response(
        {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": available,
            "hard_limit_usd": available,
            "system_hard_limit_usd": available,
            "access_until": int(principal.policy.expires_at or time.time() + 10 * 365 * 86_400),
            "plan": {"title": "aicy", "id": principal.account_id},
        }
    )


def _date(text: str | None, default: datetime.date) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text) if text else default
    except ValueError:
        return default


async def usage(request: Request) -> Response:
    """``total_usage`` in cents over ``start_date`` (inclusive) to ``end_date`` (exclusive), UTC days."""
    services = services_of(request)
    principal = await authenticate(request, services)
    today = datetime.datetime.now(datetime.UTC).date()
    start = _date(request.query_params.get("start_date"), today.replace(day=1))
    end = _date(request.query_params.get("end_date"), today + datetime.timedelta(days=1))

    def stamp(day: datetime.date) -> int:
        return int(datetime.datetime.combine(day, datetime.time(), datetime.UTC).timestamp())

    await services.billing.settled()
    spent = await services.billing.total_cost(principal.account_id, stamp(start), stamp(end))
    return json_response({"object": "list", "total_usage": spent / CENTS, "daily_costs": []})


def code_failures(request: Request) -> FailureLimiter:
    """The app's count of failed redeems, made on first use (it belongs to the app, like its services)."""
    state = request.app.state
    limiter: FailureLimiter | None = getattr(state, "code_failures", None)
    if limiter is None:
        limiter = state.code_failures = FailureLimiter(MAX_FAILURES, FAILURE_WINDOW)
    return limiter


async def redeem(request: Request) -> Response:
    """``{"code": "aicy-…"}``: the code's value is credited to the key's account, once."""
    services = services_of(request)
    principal = await authenticate(request, services)
    body = await read_json(request, services.settings.max_body_bytes)
    redemptions = Redemptions(TopupCodeStore(services.db, services.billing.tx), code_failures(request))
    done = await redemptions.redeem(principal.account_id, client_ip(request), body)
    return json_response(redemption_json(done))


def billing_routes() -> list[Route]:
    return [
        Route("/v1/dashboard/billing/subscription", subscription, methods=["GET"]),
        Route("/dashboard/billing/subscription", subscription, methods=["GET"]),
        Route("/v1/dashboard/billing/usage", usage, methods=["GET"]),
        Route("/dashboard/billing/usage", usage, methods=["GET"]),
        Route("/v1/dashboard/billing/redeem", redeem, methods=["POST"]),
        Route("/dashboard/billing/redeem", redeem, methods=["POST"]),
    ]
