"""The gateway alone, for ``post_jobs.py``: no submitter, monitor or results worker in the process.

The auth app is mounted at /auth as ``gridgate dev`` does, so the development issuer's discovery
and JWKS are served by the same process and the gateway's token validator can fetch them. Logging
is configured as in production (JSON lines at INFO), to the process's stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from gridgate.auth.config import AuthSettings
from gridgate.auth.main import create_app as create_auth_app
from gridgate.core.logging import configure_logging
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.main import create_app as create_gateway_app
from gridgate.iam.dev_issuer import DevIssuer

AUDIENCE = "gridgate"


def issuer_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/auth/dev-issuer"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="issuer key, results")
    parser.add_argument(
        "--database-url", required=True, help="postgresql+asyncpg://... or sqlite+aiosqlite:///..."
    )
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--internal-token", default="", help="for /internal (scale.py's monitor)")
    args = parser.parse_args(argv)
    configure_logging(json=True, level="INFO")
    issuer = DevIssuer(issuer_url(args.host, args.port), args.data_dir / "dev-issuer-key.json")
    settings = GatewaySettings(
        database_url=SecretStr(args.database_url),
        broker_url=SecretStr(args.broker_url),
        oidc_issuer=issuer.issuer,
        oidc_audience=AUDIENCE,
        results_dir=args.data_dir / "results",
        internal_token=SecretStr(args.internal_token),
    )
    app = create_gateway_app(settings)
    app.mount("/auth", create_auth_app(AuthSettings(), dev_issuer=issuer))
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
