"""GET /v1/models and GET /v1/models/{id}."""

from __future__ import annotations

from aicy.accounting.policy import check_model
from aicy.domain.keys import Principal
from aicy.serving.calls import resolve_model
from aicy.serving.services import Services
from aicy.types import JSON


def list_models(services: Services, principal: Principal) -> JSON:
    """What can be served now and this key may use."""
    allowed = principal.policy.models
    models = [m for m in services.router.servable() if allowed is None or m.id in allowed]
    return {"object": "list", "data": [m.to_json() for m in models]}


def get_model(services: Services, principal: Principal, model_id: str) -> JSON:
    model = resolve_model(services, model_id)
    check_model(principal.policy, model.id)
    return model.to_json()
