"""GET /v1/models and GET /v1/models/{id}."""

from __future__ import annotations

from aicy.accounting.keys import Principal
from aicy.serving.calls import resolve_model
from aicy.serving.services import Services
from aicy.types import JSON


def list_models(services: Services, principal: Principal) -> JSON:
    return {"object": "list", "data": [m.to_json() for m in services.router.servable()]}


def get_model(services: Services, principal: Principal, model_id: str) -> JSON:
    return resolve_model(services, model_id).to_json()
