"""Checks of a key's policy that need no storage: expiry, client IP, model allowlist, spend periods."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime

from aicy.domain.keys import KeyPolicy
from aicy.errors import PermissionDenied, Unauthorized
from aicy.storage.billing import SpendLimit


def check_key(policy: KeyPolicy, client_ip: str | None, now: float | None = None) -> None:
    if policy.expires_at is not None and (now or time.time()) >= policy.expires_at:
        raise Unauthorized("This API key has expired. Ask for a new key.")
    if policy.suspended_reason:
        raise PermissionDenied(policy.suspended_reason, code="key_suspended")
    if policy.ips is not None and not ip_allowed(client_ip, policy.ips):
        raise PermissionDenied(
            f"This API key may not be used from {client_ip or 'an unknown address'}. "
            "Its IP allowlist does not include this address.",
            code="ip_not_allowed",
        )


def check_model(policy: KeyPolicy, model: str) -> None:
    if policy.models is not None and model not in policy.models:
        raise PermissionDenied(
            f"This API key may not use the model `{model}`.", param="model", code="model_not_allowed"
        )


def ip_allowed(client_ip: str | None, networks: tuple[str, ...]) -> bool:
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def spend_limits(policy: KeyPolicy, now: float | None = None) -> list[SpendLimit]:
    """The key's spend limits as periods (UTC days and months) a reservation must fit."""
    limits: list[SpendLimit] = []
    if policy.spend_limit is not None:
        limits.append(SpendLimit("total", policy.spend_limit))
    if policy.spend_limit_daily is None and policy.spend_limit_monthly is None:
        return limits  # no calendar periods: no need to know today's date (a few µs per request)
    moment = datetime.fromtimestamp(now or time.time(), UTC)
    if policy.spend_limit_daily is not None:
        limits.append(SpendLimit(moment.strftime("d:%Y-%m-%d"), policy.spend_limit_daily))
    if policy.spend_limit_monthly is not None:
        limits.append(SpendLimit(moment.strftime("m:%Y-%m"), policy.spend_limit_monthly))
    return limits
