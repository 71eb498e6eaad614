"""The README documents every setting."""

from __future__ import annotations

from pathlib import Path

from aicy.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`AICY_{name.upper()}`" not in text]
    assert not missing, f"undocumented settings: {missing}"
