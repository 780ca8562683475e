"""The auth service (``gridgate-auth``).

Today it serves the development issuer that ``gridgate dev`` uses; the exchange of IAM tokens
for x509 proxies (issue 3) lands here behind the same application.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from gridgate.auth.config import AuthSettings
from gridgate.auth.handlers import router
from gridgate.core.logging import configure_logging
from gridgate.iam.dev_issuer import DevIssuer
from gridgate.web import install_problem_handlers


def create_app(settings: AuthSettings, dev_issuer: DevIssuer | None = None) -> FastAPI:
    app = FastAPI(title="gridgate auth", version="0.1.0")
    install_problem_handlers(app)
    if dev_issuer is None and settings.dev_issuer:
        dev_issuer = DevIssuer(settings.dev_issuer_url, settings.dev_issuer_key_file)
    app.state.dev_issuer = dev_issuer
    app.include_router(router)
    return app


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gridgate-auth")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = AuthSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)
