from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicy.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No AICY_* variables from outside, and a working folder without an aicy.toml."""
    for name in list(os.environ):
        if name.startswith("AICY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.data_dir == Path("data")
    assert settings.database_url is None
    assert settings.engine_enabled is True
    assert settings.engine_model_path is None
    assert settings.engine_threads >= 1
    assert settings.engine_context == 8192
    assert settings.engine_max_output_tokens == 4096
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.log_level == "info"


def test_env_vars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AICY_PORT", "9123")
    monkeypatch.setenv("AICY_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AICY_ENGINE_ENABLED", "false")
    settings = Settings()
    assert settings.port == 9123
    assert settings.data_dir == tmp_path / "state"
    assert settings.engine_enabled is False


def test_bad_env_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICY_PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_config_file_named_by_aicy_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(tmp_path / "elsewhere.toml", 'port = 7001\nhost = "0.0.0.0"\nlog_level = "debug"\n')
    monkeypatch.setenv("AICY_CONFIG", str(config))
    settings = Settings()
    assert (settings.port, settings.host, settings.log_level) == (7001, "0.0.0.0", "debug")


def test_aicy_toml_in_working_folder_is_read_by_default(tmp_path: Path) -> None:
    write_config(tmp_path / "aicy.toml", "port = 7002\n")
    assert Settings().port == 7002


def test_env_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", 'port = 7003\nlog_level = "warning"\n')
    monkeypatch.setenv("AICY_CONFIG", str(config))
    monkeypatch.setenv("AICY_PORT", "7004")
    settings = Settings()
    assert settings.port == 7004
    assert settings.log_level == "warning"


def test_constructor_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICY_PORT", "7005")
    assert Settings(port=7006).port == 7006


def test_resolved_database_url_defaults_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'aicy.db'}"
    assert Settings().resolved_database_url == "sqlite+aiosqlite:///data/aicy.db"


def test_explicit_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICY_DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    assert Settings().resolved_database_url == "sqlite+aiosqlite:///:memory:"


@pytest.mark.parametrize(
    ("host", "public_url", "expected"),
    [
        ("127.0.0.1", None, "http://127.0.0.1:8000/v1"),
        ("0.0.0.0", None, "http://127.0.0.1:8000/v1"),
        ("::", None, "http://127.0.0.1:8000/v1"),
        ("example.org", None, "http://example.org:8000/v1"),
        ("0.0.0.0", "https://api.example.org/v1", "https://api.example.org/v1"),
    ],
)
def test_resolved_public_url(host: str, public_url: str | None, expected: str) -> None:
    assert Settings(host=host, public_url=public_url).resolved_public_url == expected
