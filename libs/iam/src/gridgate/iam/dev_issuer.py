"""A development issuer: discovery, JWKS and minted tokens for ``gridgate dev``.

Tokens it mints go through the same :class:`~gridgate.iam.validator.TokenValidator` as IAM
tokens; only the key and the issuer URL differ. Never enable it in production.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

DEV_CLIENT_ID = "gridgate-dev"


class DevIssuer:
    """Holds the RSA signing key in a file (mode 0600) so CLI and server share it."""

    def __init__(self, issuer: str, key_file: Path) -> None:
        self.issuer = issuer.rstrip("/")
        self.key_file = key_file
        self._key = self._load_or_create_key()

    def _load_or_create_key(self) -> RSAKey:
        if self.key_file.exists():
            return RSAKey.import_key(json.loads(self.key_file.read_text()))
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
        key.ensure_kid()
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.key_file, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(key.as_dict(private=True), handle)
        return key

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [],
            "grant_types_supported": [],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def mint(
        self,
        sub: str,
        *,
        groups: list[str],
        audience: str,
        lifetime_s: int = 3600,
        name: str | None = None,
    ) -> str:
        """Return a signed access token shaped as IAM's WLCG-profile tokens are."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "jti": str(uuid.uuid4()),
            "client_id": DEV_CLIENT_ID,
            "scope": "openid profile wlcg.groups",
            "wlcg.ver": "1.0",
            "wlcg.groups": ["/" + g.strip("/") for g in groups],
            "groups": [g.strip("/") for g in groups],
        }
        if name:
            claims["preferred_username"] = name
        header = {"alg": "RS256", "kid": self._key.kid}
        return jwt.encode(header, claims, self._key)
