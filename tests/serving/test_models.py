"""GET /v1/models and GET /v1/models/{id}."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.support import MODEL


def test_list_shows_the_embedded_model_with_catalog_metadata(client: OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models]
    assert MODEL in ids
    entry = next(m for m in models if m.id == MODEL)
    assert entry.object == "model"
    assert isinstance(entry.created, int)
    assert entry.owned_by
    assert entry.model_extra is not None and entry.model_extra["context_window"] > 0


def test_retrieve_one(client: OpenAI) -> None:
    assert client.models.retrieve(MODEL).id == MODEL


def test_retrieve_unknown_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-5.2")
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
