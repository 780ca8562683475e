"""Where ``gridgate login`` keeps its tokens: one 0600 JSON file, one entry per gateway.

The file is ``$GRIDGATE_CONFIG_DIR/credentials.json`` (default
``$XDG_CONFIG_HOME/gridgate``, else ``~/.config/gridgate``). It is written whole to a
temporary file created 0600 and renamed over the old one, so no other user can read a
token at any moment and a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXPIRY_MARGIN_S = 30
"""A token this close to its expiry is treated as expired: the request would race it."""


def config_dir() -> Path:
    explicit = os.environ.get("GRIDGATE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gridgate"


@dataclass
class Credential:
    """The tokens of one login at one gateway, and where they came from."""

    access_token: str
    issuer: str
    client_id: str
    expires_at: float | None = None
    refresh_token: str | None = None
    token_endpoint: str | None = None

    def expired(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or time.time()) >= self.expires_at - EXPIRY_MARGIN_S


class CredentialStore:
    """The credentials file, keyed by gateway URL."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "credentials.json"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file 0600: the token is never readable by others.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials.")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, gateway: str) -> Credential | None:
        entry = self._read().get(gateway.rstrip("/"))
        return Credential(**entry) if isinstance(entry, dict) else None

    def put(self, gateway: str, credential: Credential) -> None:
        data = self._read()
        data[gateway.rstrip("/")] = asdict(credential)
        self._write(data)

    def remove(self, gateway: str) -> bool:
        data = self._read()
        found = data.pop(gateway.rstrip("/"), None) is not None
        if found:
            self._write(data)
        return found
