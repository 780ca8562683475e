"""Refresh and access tokens sealed at rest with the operator's Fernet keys."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenBox:
    """Encrypts with the first of the operator's Fernet keys, decrypts with any of them (key
    rotation: put the new key first, re-seal happens at each refresh)."""

    def __init__(self, keys: str) -> None:
        parsed = [key.strip() for key in keys.split(",") if key.strip()]
        if not parsed:
            raise ValueError("GRIDGATE_AUTH_DIRACX_LINK_KEYS must hold at least one Fernet key")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in parsed])

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            # says which kind of value, never the value
            raise ValueError("a stored DiracX token cannot be decrypted with the keys") from None
