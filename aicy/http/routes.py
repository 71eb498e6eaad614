"""Thin route handlers: read, authenticate, hand to ``serving``, write."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from aicy.http.auth import authenticate, client_ip
from aicy.http.body import read_json_sized
from aicy.http.edge import Endpoint
from aicy.http.errors import REQUEST_ID_KEY
from aicy.http.generation import GenerationResponse
from aicy.serving import chat, models, responses
from aicy.serving.calls import RequestContext
from aicy.serving.services import Services


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json")


def request_context(request: Request, body_bytes: int) -> RequestContext:
    return RequestContext(request.scope.get(REQUEST_ID_KEY), client_ip(request), body_bytes)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def list_models(request: Request) -> Response:
    services = services_of(request)
    principal = await authenticate(request, services)
    return json_response(models.list_models(services, principal))


async def get_model(request: Request) -> Response:
    services = services_of(request)
    principal = await authenticate(request, services)
    return json_response(models.get_model(services, principal, request.path_params["model_id"]))


async def chat_completions(request: Request) -> ASGIApp:
    services = services_of(request)
    principal = await authenticate(request, services)
    body, size = await read_json_sized(request, services.settings.max_body_bytes)
    generation = chat.prepare(services, principal, body, request_context(request, size))
    return GenerationResponse(generation, services.settings)


async def create_response(request: Request) -> ASGIApp:
    services = services_of(request)
    principal = await authenticate(request, services)
    body, size = await read_json_sized(request, services.settings.max_body_bytes)
    generation = await responses.prepare(services, principal, body, request_context(request, size))
    return GenerationResponse(generation, services.settings)


async def get_response(request: Request) -> Response:
    services = services_of(request)
    principal = await authenticate(request, services)
    return json_response(await responses.retrieve(services, principal, request.path_params["response_id"]))


async def delete_response(request: Request) -> Response:
    services = services_of(request)
    principal = await authenticate(request, services)
    return json_response(await responses.delete(services, principal, request.path_params["response_id"]))


async def list_input_items(request: Request) -> Response:
    services = services_of(request)
    principal = await authenticate(request, services)
    query = {k: v for k, v in request.query_params.items()}
    page = await responses.list_input_items(services, principal, request.path_params["response_id"], query)
    return json_response(page)


async def health(request: Request) -> Response:
    engine = services_of(request).engine
    stats = asdict(engine.stats) if engine is not None else None
    queues = services_of(request).admission.snapshot()
    return json_response({"status": "ok", "engine": stats, "queues": queues})


def direct_routes() -> dict[tuple[str, str], Endpoint]:
    """The generation routes, which the edge serves without Starlette's router (see ``aicy.http.edge``)."""
    return {("POST", "/v1/chat/completions"): chat_completions, ("POST", "/v1/responses"): create_response}


def routes() -> list[Route]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    ]
