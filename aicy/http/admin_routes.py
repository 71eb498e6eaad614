"""The operators' HTTP API under /admin (admin keys only): models and channels."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicy.http.auth import authenticate_admin
from aicy.http.body import read_json
from aicy.http.routes import json_response, services_of
from aicy.routing.catalog_json import model_to_json
from aicy.routing.channels import Channel
from aicy.serving.catalog_admin import try_channel
from aicy.serving.services import Services


async def _admin(request: Request) -> Services:
    services = services_of(request)
    await authenticate_admin(request, services.keys)
    return services


async def _applied(request: Request) -> None:
    """Changes made here take effect at once (the CLI's are picked up by the periodic reload)."""
    await request.app.state.catalog_sync.load()


def _channel_view(services: Services, channel: Channel) -> dict[str, object]:
    breaker = services.router.breaker(channel.name)
    return {
        **channel.to_json(),
        "health": {
            "state": breaker.state,
            "last_error": breaker.last_error,
            "consecutive_failures": breaker.failures,
        },
    }


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
    return json_response(await try_channel(channel, services.http, request.query_params.get("model")))


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
    ]
