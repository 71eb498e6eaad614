"""Bearer-key authentication: header -> principal, or 401 without echoing any key material."""

from __future__ import annotations

from starlette.requests import Request

from aicy.accounting.policy import check_key
from aicy.domain.keys import Principal, hash_secret, looks_like_key
from aicy.errors import PermissionDenied, Unauthorized
from aicy.serving.services import Services

_MISSING = (
    "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
    "(Authorization: Bearer YOUR_API_KEY)."
)
_MALFORMED = "The Authorization header must have the form 'Bearer YOUR_API_KEY'."
_UNKNOWN = "Incorrect API key provided. Check that the key is complete, with no extra spaces or line breaks."


def _presented_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        alt = request.headers.get("x-api-key") or request.headers.get("api-key")
        if alt is None:
            raise Unauthorized(_MISSING)
        return alt.strip()
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(_MALFORMED)
    return value.strip()


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def authenticate(request: Request, services: Services) -> Principal:
    """The key's principal, after its expiry, suspension, IP allowlist and the leak detector."""
    secret = _presented_key(request)
    if not looks_like_key(secret):
        raise Unauthorized(_UNKNOWN)
    secret_hash = hash_secret(secret)
    found, principal = services.key_cache.get(secret_hash)
    if not found:
        principal = await services.keys.principal(secret_hash)
        services.key_cache.put(secret_hash, principal)
    if principal is None:
        raise Unauthorized(_UNKNOWN)
    ip = client_ip(request)
    check_key(principal.policy, ip)
    if not principal.policy.shared and not principal.is_admin:
        reason = services.leaks.observe(principal.key_id, ip)
        if reason is not None:
            await services.keys.suspend(principal.key_id, reason)
            services.key_cache.clear()
            raise PermissionDenied(reason, code="key_suspended")
    return principal


async def authenticate_admin(request: Request, services: Services) -> Principal:
    principal = await authenticate(request, services)
    if not principal.is_admin:
        raise PermissionDenied("This route needs an admin key.")
    return principal
