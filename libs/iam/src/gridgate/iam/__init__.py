"""INDIGO IAM access-token validation, and a development issuer that uses the same path."""

from gridgate.iam.dev_issuer import DevIssuer
from gridgate.iam.identity import Identity, identity_from_claims
from gridgate.iam.validator import ALLOWED_ALGORITHMS, TokenValidator

__all__ = ["ALLOWED_ALGORITHMS", "DevIssuer", "Identity", "TokenValidator", "identity_from_claims"]
