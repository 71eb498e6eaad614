"""The operators' HTTP API under /admin (admin keys only): models, channels, accounts, keys, top-up codes."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicy.domain.channels import Channel
from aicy.domain.keys import Principal
from aicy.errors import InvalidRequest
from aicy.http.auth import authenticate_admin
from aicy.http.body import read_json
from aicy.http.routes import json_response, services_of
from aicy.protocol.validation import int_param
from aicy.routing.catalog_json import model_to_json
from aicy.serving.accounts_admin import AccountsAdmin, account_json, key_json
from aicy.serving.catalog_admin import try_channel
from aicy.serving.codes import MAX_BATCH, CodesAdmin, batch_json, code_json
from aicy.serving.console import set_login
from aicy.serving.services import Services
from aicy.storage.audit import Change, audit_entries, masked, record
from aicy.storage.codes import TopupCodeStore
from aicy.storage.logins import LoginStore
from aicy.storage.probes import ProbeStore

MAX_DAYS = 3660  # /admin/usage looks back at most ten years


async def _admin(request: Request) -> Services:
    services = services_of(request)
    request.state.admin = await authenticate_admin(request, services)
    await services.billing.settled()  # balances and usage include every reply already sent
    return services


async def _audit(
    request: Request, services: Services, action: str, target: str | None, details: dict[str, Any]
) -> None:
    """Record a change made through this API under the admin key's id (after the change: a failed change
    raises before this, so nothing that did not happen is recorded)."""
    principal: Principal = request.state.admin
    change = Change(principal.key_id, action, target, details)
    await services.keys.tx.run(lambda tx: record(tx, change))


async def _admin_principal(request: Request) -> tuple[Services, Principal]:
    """The services and the admin key's principal: the changes it makes are recorded under its id."""
    services = services_of(request)
    return services, await authenticate_admin(request, services)


async def _applied(request: Request) -> None:
    """Changes made here take effect at once (the CLI's are picked up by the periodic reload)."""
    await request.app.state.catalog_sync.load()


def _public(view: dict[str, object]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("health",)}


def _channel_view(services: Services, channel: Channel) -> dict[str, object]:
    breaker = services.router.breaker(channel.name)
    view: dict[str, object] = {
        **channel.to_json(),
        "health": {
            "state": breaker.state,
            "last_error": breaker.last_error,
            "consecutive_failures": breaker.failures,
        },
    }
    warnings = channel.warnings()  # tls_insecure_skip_verify and the like, flagged as unsafe
    if warnings:
        view["warnings"] = warnings
    return view


async def list_models(request: Request) -> Response:
    services = await _admin(request)
    return json_response(
        {"object": "list", "data": [model_to_json(m) for m in await services.catalog.models()]}
    )


async def put_model(request: Request) -> Response:
    services = await _admin(request)
    model = await services.catalog.put_model(await read_json(request, services.settings.max_body_bytes))
    await _applied(request)
    await _audit(request, services, "model.put", model.id, model_to_json(model))
    return json_response(model_to_json(model), status=201)


async def patch_model(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    model = await services.catalog.patch_model(request.path_params["model_id"], body)
    await _applied(request)
    await _audit(request, services, "model.update", model.id, body if isinstance(body, dict) else {})
    return json_response(model_to_json(model))


async def delete_model(request: Request) -> Response:
    services = await _admin(request)
    await services.catalog.delete_model(request.path_params["model_id"])
    await _applied(request)
    await _audit(request, services, "model.delete", request.path_params["model_id"], {})
    return json_response({"id": request.path_params["model_id"], "deleted": True})


def _probe_view(failures: dict[str, list[str]], channel: Channel) -> dict[str, object] | None:
    """The checks that failed in the channel's latest probe run of each model (None: never probed)."""
    failed = failures.get(channel.name)
    return None if failed is None else {"ok": not failed, "failed": failed}


async def _probed_view(services: Services, channels: list[Channel]) -> list[dict[str, object]]:
    failures = await ProbeStore(services.db).latest_failures()
    return [{**_channel_view(services, c), "probe": _probe_view(failures, c)} for c in channels]


async def list_channels(request: Request) -> Response:
    services = await _admin(request)
    channels = await services.catalog.channels()
    return json_response({"object": "list", "data": await _probed_view(services, channels)})


async def add_channel(request: Request) -> Response:
    services = await _admin(request)
    channel = await services.catalog.add_channel(await read_json(request, services.settings.max_body_bytes))
    await _applied(request)
    await _audit(request, services, "channel.add", channel.name, _public(_channel_view(services, channel)))
    return json_response(_channel_view(services, channel), status=201)


async def get_channel(request: Request) -> Response:
    services = await _admin(request)
    channel = await services.catalog.channel(request.path_params["name"])
    return json_response((await _probed_view(services, [channel]))[0])


async def update_channel(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    channel = await services.catalog.update_channel(request.path_params["name"], body)
    await _applied(request)
    await _audit(request, services, "channel.update", channel.name, masked(body))
    return json_response(_channel_view(services, channel))


async def remove_channel(request: Request) -> Response:
    services = await _admin(request)
    await services.catalog.remove_channel(request.path_params["name"])
    await _applied(request)
    await _audit(request, services, "channel.remove", request.path_params["name"], {})
    return json_response({"name": request.path_params["name"], "deleted": True})


async def test_channel(request: Request) -> Response:
    services = await _admin(request)
    channel = await services.catalog.channel(request.path_params["name"])
    backend = services.backend_for(channel)
    return json_response(await try_channel(channel, backend, request.query_params.get("model")))


def admin_routes() -> list[Route]:
    return [
        Route("/admin/models", list_models, methods=["GET"]),
        Route("/admin/models", put_model, methods=["POST"]),
        Route("/admin/models/{model_id:path}", patch_model, methods=["PATCH"]),
        Route("/admin/models/{model_id:path}", delete_model, methods=["DELETE"]),
        Route("/admin/channels", list_channels, methods=["GET"]),
        Route("/admin/channels", add_channel, methods=["POST"]),
        Route("/admin/channels/{name}/test", test_channel, methods=["POST"]),
        Route("/admin/channels/{name}", get_channel, methods=["GET"]),
        Route("/admin/channels/{name}", update_channel, methods=["PATCH"]),
        Route("/admin/channels/{name}", remove_channel, methods=["DELETE"]),
        *account_routes(),
        *code_routes(),
    ]


def _accounts(services: Services) -> AccountsAdmin:
    return AccountsAdmin(services.keys, services.billing)


async def list_accounts(request: Request) -> Response:
    services = await _admin(request)
    return json_response(
        {"object": "list", "data": [account_json(a) for a in await services.keys.list_accounts()]}
    )


async def create_account(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    account = await _accounts(services).create_account(body)
    await _audit(request, services, "account.create", account.name, {})
    return json_response(account_json(account), status=201)


async def get_account(request: Request) -> Response:
    services = await _admin(request)
    return json_response(account_json(await _accounts(services).account(request.path_params["account"])))


async def credit_account(request: Request) -> Response:
    """A top-up or an adjustment; with an ``Idempotency-Key`` header, once: the same key and request again
    get the first result (marked ``Idempotent-Replayed: true``) and move no money."""
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    reason = "topup" if request.url.path.endswith("/topup") else "adjustment"
    done = await _accounts(services).credit(
        request.path_params["account"], body, reason, request.headers.get("idempotency-key")
    )
    headers = {"Idempotent-Replayed": "true"} if done.replayed else None
    if not done.replayed:
        await _audit(request, services, f"account.{reason}", done.account.name, masked(body))
    return json_response(account_json(done.account), headers=headers)


async def account_ledger(request: Request) -> Response:
    services = await _admin(request)
    return json_response(
        {"object": "list", "data": await _accounts(services).ledger(request.path_params["account"])}
    )


async def list_keys(request: Request) -> Response:
    services = await _admin(request)
    account = request.query_params.get("account")
    account_id = (await _accounts(services).account(account)).id if account else None
    return json_response(
        {"object": "list", "data": [key_json(k) for k in await services.keys.list_keys(account_id)]}
    )


async def create_key(request: Request) -> Response:
    services = await _admin(request)
    made, secret = await _accounts(services).create_key(
        await read_json(request, services.settings.max_body_bytes)
    )
    await _audit(request, services, "key.create", made.id, {**key_json(made)})
    return json_response({**key_json(made), "key": secret}, status=201)


async def update_key(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    updated = await _accounts(services).update_key(request.path_params["key"], body)
    services.key_cache.clear()
    await _audit(request, services, "key.update", updated.id, masked(body))
    return json_response(key_json(updated))


async def revoke_key(request: Request) -> Response:
    services = await _admin(request)
    key = await _accounts(services).key(request.path_params["key"])
    await services.keys.revoke(key.id)
    services.key_cache.clear()
    await _audit(request, services, "key.revoke", key.id, {"account": key.account_name})
    return json_response({"id": key.id, "revoked": True})


async def usage(request: Request) -> Response:
    services = await _admin(request)
    query = request.query_params
    days = int_param(query, "days", 30, 1, MAX_DAYS)
    rows = await _accounts(services).usage(query.get("group_by", "day"), query.get("account"), days)
    return json_response({"object": "list", "group_by": query.get("group_by", "day"), "data": rows})


async def usage_lines(request: Request) -> Response:
    """The raw usage log, newest first (``account``, ``limit`` up to 1000)."""
    services = await _admin(request)
    account = request.query_params.get("account")
    account_id = (await _accounts(services).account(account)).id if account else None
    limit = int_param(request.query_params, "limit", 100, 1, 1000)
    lines = await services.billing.usage_lines(account_id, limit=limit)
    return json_response({"object": "list", "data": lines})


async def account_login(request: Request) -> Response:
    """Give an account a console password (``{"password": …, "email": …}``); its open sessions end."""
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("password"), str):
        raise InvalidRequest("'password' must be a string.", param="password", code="invalid_type")
    email = body.get("email")
    if email is not None and not isinstance(email, str):
        raise InvalidRequest("'email' must be a string.", param="email", code="invalid_type")
    logins = LoginStore(services.keys.engine, services.keys.tx)
    account = await set_login(services.keys, logins, request.path_params["account"], body["password"], email)
    await _audit(request, services, "account.login", account.name, {"email": email})  # never the password
    return json_response({"id": account.id, "name": account.name, "console": True})


def account_routes() -> list[Route]:
    return [
        Route("/admin/accounts", list_accounts, methods=["GET"]),
        Route("/admin/accounts", create_account, methods=["POST"]),
        Route("/admin/accounts/{account}", get_account, methods=["GET"]),
        Route("/admin/accounts/{account}/topup", credit_account, methods=["POST"]),
        Route("/admin/accounts/{account}/adjust", credit_account, methods=["POST"]),
        Route("/admin/accounts/{account}/ledger", account_ledger, methods=["GET"]),
        Route("/admin/accounts/{account}/login", account_login, methods=["POST"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys/{key}", update_key, methods=["PATCH"]),
        Route("/admin/keys/{key}", revoke_key, methods=["DELETE"]),
        Route("/admin/usage", usage, methods=["GET"]),
        Route("/admin/usage/lines", usage_lines, methods=["GET"]),
    ]


def _codes(services: Services) -> CodesAdmin:
    return CodesAdmin(TopupCodeStore(services.db, services.billing.tx))


async def list_codes(request: Request) -> Response:
    """Batches with their counts by state; with ``batch`` or ``status``, the codes themselves."""
    services = await _admin(request)
    query = request.query_params
    if "batch" not in query and "status" not in query:
        batches = await _codes(services).batches()
        return json_response({"object": "list", "data": [batch_json(b) for b in batches]})
    limit = int_param(query, "limit", 1000, 1, MAX_BATCH)
    codes = await _codes(services).codes(query.get("batch"), query.get("status"), limit)
    return json_response({"object": "list", "data": [code_json(c) for c in codes]})


async def create_codes(request: Request) -> Response:
    """A batch of codes; the codes are in this reply and nowhere else (only their hashes are stored)."""
    services, principal = await _admin_principal(request)
    body = await read_json(request, services.settings.max_body_bytes)
    made = await _codes(services).create(body, principal.key_id, int(time.time()))
    return json_response({**batch_json(made.summary), "codes": made.codes}, status=201)


async def revoke_codes(request: Request) -> Response:
    services, principal = await _admin_principal(request)
    body = await read_json(request, services.settings.max_body_bytes)
    count = await _codes(services).revoke(body, principal.key_id)
    return json_response({"object": "topup_code.revocation", "revoked": count})


async def audit(request: Request) -> Response:
    """Operators' changes, newest first (``limit`` up to 1000, ``action`` such as ``codes.create``)."""
    services = await _admin(request)
    limit = int_param(request.query_params, "limit", 100, 1, 1000)
    action = request.query_params.get("action")
    entries = await audit_entries(services.db, limit, action)
    return json_response({"object": "list", "data": entries})


def code_routes() -> list[Route]:
    return [
        Route("/admin/codes", list_codes, methods=["GET"]),
        Route("/admin/codes", create_codes, methods=["POST"]),
        Route("/admin/codes/revoke", revoke_codes, methods=["POST"]),
        Route("/admin/audit", audit, methods=["GET"]),
    ]
