"""The Responses dialect keeps a relaying upstream's id only when it can be stored."""

from __future__ import annotations

from aicy.protocol import responses
from aicy.serving.dialects import ResponsesDialect
from aicy.serving.metering import UsageTracker


def _dialect() -> ResponsesDialect:
    request = responses.parse_request({"model": "m", "input": "hi"})
    skeleton = responses.skeleton(request, "resp_aicy", "m", 1.0, 1.0)
    return ResponsesDialect(request, responses.ResponsesEncoder(skeleton), None)


def test_garbage_upstream_ids_are_not_kept_and_aicys_id_is_shown() -> None:
    for garbage in ("resp_\x00x", 12, None, ["resp_1"], {"id": 1}):
        dialect = _dialect()
        body = {"object": "response", "id": garbage, "status": "completed", "output": []}
        dialect.relayed_body(body, UsageTracker())
        assert body["id"] == "resp_aicy" and dialect.upstream_id is None


def test_a_long_upstream_id_is_cut_to_its_column() -> None:
    dialect = _dialect()
    body = {"object": "response", "id": "resp_" + "é" * 500, "status": "completed", "output": []}
    dialect.relayed_body(body, UsageTracker())
    assert dialect.upstream_id is not None and len(dialect.upstream_id) == 200
