"""The admin HTTP API: roles, models, channels; upstream keys sealed at rest."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from openai import OpenAI

from tests.support import AicyProcess, Operator


def test_customer_keys_cannot_reach_admin_routes(aicy: AicyProcess, api_key: str) -> None:
    for method, path in [
        ("GET", "/admin/channels"),
        ("POST", "/admin/models"),
        ("DELETE", "/admin/channels/x"),
    ]:
        reply = httpx.request(
            method, f"{aicy.root_url}{path}", headers={"Authorization": f"Bearer {api_key}"}
        )
        assert reply.status_code == 403, (method, path)
        assert reply.json()["error"]["code"] == "permission_denied"


def test_admin_routes_need_a_key(aicy: AicyProcess) -> None:
    assert httpx.get(f"{aicy.root_url}/admin/models").status_code == 401


def test_catalog_holds_the_nine_models_of_the_guide(admin: httpx.Client) -> None:
    models = {m["id"]: m for m in admin.get("/admin/models").json()["data"]}
    expected = {
        "gpt-5",
        "gpt-5.1",
        "gpt-5.2",
        "gpt-5-codex-mini",
        "gpt-5-codex",
        "gpt-5.1-codex-mini",
        "gpt-5.1-codex",
        "gpt-5.1-codex-max",
        "gpt-5.2-codex",
    }
    assert expected <= set(models)
    max_model = models["gpt-5.1-codex-max"]
    assert max_model["details"]["tier"] == {"en": "max", "zh": "max"}
    assert max_model["details"]["series"]["zh"] == "编程"
    assert "xhigh" in max_model["reasoning_efforts"] and max_model["default_reasoning_effort"] == "medium"
    assert models["gpt-5.1"]["default_reasoning_effort"] == "none"
    assert models["gpt-5"]["prices"] == {"input": 1_250_000, "cached_input": 125_000, "output": 10_000_000}


def test_model_crud_shows_in_v1_models(operator: Operator, client: OpenAI, admin: httpx.Client) -> None:
    model = operator.model("crud-model", details={"note": {"en": "test"}})
    assert model not in {m.id for m in client.models.list()}, "no channel serves it yet"
    operator.channel("crud-channel", "http://127.0.0.1:9/v1", [model])
    assert model in {m.id for m in client.models.list()}
    reply = admin.patch(f"/admin/models/{model}", json={"max_output_tokens": 77})
    assert reply.json()["max_output_tokens"] == 77
    assert client.models.retrieve(model).model_extra["max_output_tokens"] == 77  # type: ignore[index]
    assert admin.post("/admin/models", json={"id": "bad"}).status_code == 400


def test_channel_validation_and_conflicts(operator: Operator, admin: httpx.Client) -> None:
    bad = admin.post("/admin/channels", json={"name": "x", "base_url": "ftp://nope", "models": []})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "base_url"
    operator.channel("dup", "http://127.0.0.1:9/v1", ["gpt-5"])
    again = admin.post("/admin/channels", json={"name": "dup", "base_url": "http://127.0.0.1:9/v1"})
    assert again.status_code == 409
    assert admin.get("/admin/channels/nope").status_code == 404


def test_upstream_keys_are_masked_and_sealed_at_rest(
    operator: Operator, admin: httpx.Client, aicy: AicyProcess
) -> None:
    secret = "sk-upstream-very-secret-123456"
    operator.channel("sealed", "http://127.0.0.1:9/v1", ["gpt-5"], api_keys=[secret])
    shown = admin.get("/admin/channels/sealed").json()
    assert secret not in str(shown) and shown["api_keys"][0].endswith("3456")
    database = sqlite3.connect(aicy.data_dir / "aicy.db")
    try:
        dump = "\n".join(database.iterdump())
    finally:
        database.close()
    assert "sealed" in dump and secret not in dump


def test_channel_test_reports_latency_and_errors(operator: Operator, admin: httpx.Client) -> None:
    operator.channel("unreachable", "http://127.0.0.1:9/v1", ["gpt-5"], connect_timeout=0.5)
    result = admin.post("/admin/channels/unreachable/test").json()
    assert result["ok"] is False and result["latency_ms"] >= 0 and result["error"]


@pytest.mark.parametrize("path", ["/admin/channels", "/admin/models"])
def test_admin_lists_are_lists(admin: httpx.Client, path: str) -> None:
    body = admin.get(path).json()
    assert body["object"] == "list" and isinstance(body["data"], list)
