"""A real Codex CLI (npm ``@openai/codex``, installed into tests/.npm by ``make test-codex``) doing one task
through aicy, in its default configuration: only a provider block pointing at aicy with ``wire_api =
"responses"``.

aicy serves ``gpt-5.5`` (the model name Codex offers its fullest tool set: function tools, the free-form
``apply_patch``, ``tool_search``, ``web_search``) from the scripted Codex upstream
(tests/fakes/codex_upstream.py): over Chat Completions, where aicy translates Codex's tools, and over the
Responses API, where it relays them. Turn 1 of the upstream calls ``exec_command`` (``echo aicy-codex-ok``)
and ``apply_patch``; Codex runs both in its sandbox and sends the results; turn 2 is the final message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.codex_upstream import ENCRYPTED, FINAL_TEXT, PATCH, CodexUpstream
from tests.support import PROXY_VARIABLES, AicyProcess, Operator

ROOT = Path(__file__).parents[1]
CODEX = ROOT / "tests" / ".npm" / "node_modules" / ".bin" / "codex"
CODEX_MODEL = "gpt-5.5"
PROMPT = "Print aicy-codex-ok with echo, then add hello.txt."


def codex_executable() -> Path:
    """The Codex CLI of ``make test-codex``, installed on first use when npm is there."""
    if not CODEX.exists() and shutil.which("npm"):
        subprocess.run(["make", "-s", "test-codex"], cwd=ROOT, check=True, capture_output=True)
    if not CODEX.exists():
        message = "Codex CLI is not installed and npm is missing (`make test-codex` installs both)"
        if os.environ.get("CI") or os.environ.get("AICY_REQUIRE_CODEX"):
            pytest.fail(message)
        pytest.skip(message)
    return CODEX


@pytest.fixture(scope="module")
def upstream() -> Iterator[CodexUpstream]:
    server = CodexUpstream().start()
    yield server
    server.stop()


def run_codex(codex: Path, aicy: AicyProcess, api_key: str, folder: Path) -> subprocess.CompletedProcess[str]:
    home, work = folder / "codex-home", folder / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\nmodel_provider = "aicy"\n\n'
        '[model_providers.aicy]\nname = "aicy"\n'
        f'base_url = "{aicy.base_url}"\nenv_key = "AICY_API_KEY"\nwire_api = "responses"\n'
    )
    outside = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    return subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", PROMPT],
        cwd=work,
        env={**outside, "CODEX_HOME": str(home), "AICY_API_KEY": api_key},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_patch_result(result: str, work: Path) -> None:
    """Codex parsed the patch aicy handed it: applied it, or refused to write in a read-only sandbox."""
    written = work / "hello.txt"
    if written.exists():
        assert written.read_text() == "hello from aicy\n"
    else:
        assert "patch rejected" in result and "read-only sandbox" in result, result


def codex_rows(admin: httpx.Client) -> list[dict[str, Any]]:
    lines = admin.get("/admin/usage/lines", params={"limit": 200}).json()["data"]
    return [row for row in lines if row["model"] == CODEX_MODEL]


@pytest.mark.parametrize("wire_api", ["chat", "responses"])
def test_codex_exec_through_aicy(
    aicy: AicyProcess,
    api_key: str,
    admin: httpx.Client,
    operator: Operator,
    upstream: CodexUpstream,
    tmp_path: Path,
    wire_api: str,
) -> None:
    codex = codex_executable()
    operator.model(CODEX_MODEL, reasoning_efforts=["low", "medium", "high"])
    operator.channel(f"codex-cli-{wire_api}", upstream.base_url, [CODEX_MODEL], wire_api=wire_api)
    before, rows_before = len(upstream.requests), len(codex_rows(admin))

    run = run_codex(codex, aicy, api_key, tmp_path)

    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert FINAL_TEXT in run.stdout
    turns = upstream.requests[before:]
    assert [t["api"] for t in turns] == [wire_api, wire_api]
    first, second = turns[0]["body"], turns[1]["body"]
    everything = codex_rows(admin)  # newest first
    rows = everything[: len(everything) - rows_before]
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}, rows
    if wire_api == "chat":
        check_chat_turns(first, second, tmp_path / "work")
        omitted = [set((r.get("omitted_tools") or "").replace(" ", "").split(",")) for r in rows]
        assert omitted == [{"web_search", "tool_search"}] * 2
    else:
        check_responses_turns(first, second, tmp_path / "work")
        assert [r.get("omitted_tools") for r in rows] == [None, None]


def check_chat_turns(first: dict[str, Any], second: dict[str, Any], work: Path) -> None:
    tools = {t["function"]["name"]: t["function"] for t in first["tools"] if t["type"] == "function"}
    assert {t["type"] for t in first["tools"]} == {"function"}, "hosted tools are left out"
    assert "exec_command" in tools
    patch = tools["apply_patch"]["parameters"]
    assert list(patch["properties"]) == ["input"] and patch["properties"]["input"]["type"] == "string"
    assert first["messages"][-1]["role"] == "user"
    messages = second["messages"]
    calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_exec", "exec_command"),
        ("call_patch", "apply_patch"),
    ]
    assert json.loads(calls[1]["function"]["arguments"]) == {"input": PATCH}
    results = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert set(results) == {"call_exec", "call_patch"}
    assert "Process exited with code 0" in results["call_exec"] and "aicy-codex-ok" in results["call_exec"]
    check_patch_result(results["call_patch"], work)


def check_responses_turns(first: dict[str, Any], second: dict[str, Any], work: Path) -> None:
    assert {t["type"] for t in first["tools"]} >= {"function", "custom", "tool_search", "web_search"}
    items = second["input"]
    reasoning = [i for i in items if i["type"] == "reasoning"]
    assert reasoning and reasoning[0]["encrypted_content"] == ENCRYPTED, "Codex sent the reasoning back"
    outputs = {
        i["call_id"]: i for i in items if i["type"] in ("function_call_output", "custom_tool_call_output")
    }
    assert {k: v["type"] for k, v in outputs.items()} == {
        "call_exec": "function_call_output",
        "call_patch": "custom_tool_call_output",
    }
    assert "aicy-codex-ok" in outputs["call_exec"]["output"]
    check_patch_result(outputs["call_patch"]["output"], work)
