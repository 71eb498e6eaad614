"""Encryption at rest for upstream API keys, with a server secret (setting or a key file in the data dir)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from aicy.storage.files import private_dir, private_file

KEY_FILE = "secret.key"


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    private_dir(data_dir)
    secret = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


class SecretBox:
    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(secret)

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("An upstream key cannot be decrypted: the server secret has changed.") from None


def load_or_create_node_id(data_dir: Path, configured: str | None) -> str:
    """A stable name for this replica: its open reservations are its own to recover after a crash."""
    if configured:
        return configured
    path = data_dir / "node-id"
    if path.exists():
        return path.read_text().strip()
    node = "node-" + os.urandom(6).hex()
    private_file(path).write_text(node)
    return node
