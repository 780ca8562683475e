"""Signing secrets: generated once, encrypted at rest, decrypted only to sign."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts secrets with the first of the operator's Fernet keys, decrypts with any."""

    def __init__(self, keys: str) -> None:
        parsed = [key.strip() for key in keys.split(",") if key.strip()]
        if not parsed:
            raise ValueError("GRIDGATE_NOTIFIER_SECRET_KEYS is empty: it must hold a Fernet key")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in parsed])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            # The text says which secret, never what it is.
            raise ValueError(
                "a signing secret cannot be decrypted with the configured keys"
            ) from None


def dev_secret_key(data_dir: Path) -> str:
    """A Fernet key kept in ``data_dir`` (``gridgate dev``): made once, then reused."""
    key_file = data_dir / "notifier-secret-key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(Fernet.generate_key().decode())
        key_file.chmod(0o600)
    return key_file.read_text().strip()
