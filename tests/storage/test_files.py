"""The data folder and everything aicy writes in it are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from aicy.storage.crypto import load_or_create_node_id, load_or_create_secret
from aicy.storage.files import private_dir
from tests.support import AicyProcess


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_folder_and_its_key_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    load_or_create_secret(data, None)
    load_or_create_node_id(data, None)
    assert _mode(data) == 0o700
    assert _mode(data / "secret.key") == 0o600
    assert _mode(data / "node-id") == 0o600


def test_an_existing_folder_keeps_the_operators_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o750)
    assert _mode(private_dir(tmp_path)) == 0o750


def test_the_servers_database_files_are_private(aicy: AicyProcess) -> None:
    files = sorted(aicy.data_dir.glob("aicy.db*"))
    assert files, "the server made its database"
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
