"""The operators' HTTP API under /admin (admin keys only): models and channels."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicy.domain.channels import Channel
from aicy.errors import InvalidRequest
from aicy.http.auth import authenticate_admin
from aicy.http.body import read_json
from aicy.http.routes import json_response, services_of
from aicy.protocol.validation import int_param
from aicy.routing.catalog_json import model_to_json
from aicy.serving.accounts_admin import AccountsAdmin, account_json, key_json
from aicy.serving.catalog_admin import try_channel
from aicy.serving.console import set_login
from aicy.serving.services import Services
from aicy.storage.logins import LoginStore

MAX_DAYS = 3660  # /admin/usage looks back at most ten years


async def _admin(request: Request) -> Services:
    services = services_of(request)
    await authenticate_admin(request, services)
    await services.billing.settled()  # balances and usage include every reply already sent
    return services


async def _applied(request: Request) -> None:
    """Changes made here take effect at once (the CLI's are picked up by the periodic reload)."""
    await request.app.state.catalog_sync.load()


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
    return json_response(model_to_json(model), status=201)


async def patch_model(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    model = await services.catalog.patch_model(request.path_params["model_id"], body)
    await _applied(request)
    return json_response(model_to_json(model))


async def delete_model(request: Request) -> Response:
    services = await _admin(request)
    await services.catalog.delete_model(request.path_params["model_id"])
    await _applied(request)
    return json_response({"id": request.path_params["model_id"], "deleted": True})


async def list_channels(request: Request) -> Response:
    services = await _admin(request)
    channels = await services.catalog.channels()
    return json_response({"object": "list", "data": [_channel_view(services, c) for c in channels]})


async def add_channel(request: Request) -> Response:
    services = await _admin(request)
    channel = await services.catalog.add_channel(await read_json(request, services.settings.max_body_bytes))
    await _applied(request)
    return json_response(_channel_view(services, channel), status=201)


async def get_channel(request: Request) -> Response:
    services = await _admin(request)
    return json_response(_channel_view(services, await services.catalog.channel(request.path_params["name"])))


async def update_channel(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    channel = await services.catalog.update_channel(request.path_params["name"], body)
    await _applied(request)
    return json_response(_channel_view(services, channel))


async def remove_channel(request: Request) -> Response:
    services = await _admin(request)
    await services.catalog.remove_channel(request.path_params["name"])
    await _applied(request)
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
    return json_response(account_json(await _accounts(services).create_account(body)), status=201)


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
    record, secret = await _accounts(services).create_key(
        await read_json(request, services.settings.max_body_bytes)
    )
    return json_response({**key_json(record), "key": secret}, status=201)


async def update_key(request: Request) -> Response:
    services = await _admin(request)
    body = await read_json(request, services.settings.max_body_bytes)
    record = await _accounts(services).update_key(request.path_params["key"], body)
    services.key_cache.clear()
    return json_response(key_json(record))


async def revoke_key(request: Request) -> Response:
    services = await _admin(request)
    key = await _accounts(services).key(request.path_params["key"])
    await services.keys.revoke(key.id)
    services.key_cache.clear()
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
    record = await set_login(services.keys, logins, request.path_params["account"], body["password"], email)
    return json_response({"id": record.id, "name": record.name, "console": True})


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
