"""What every client command shares: the gateway URL, the token, the console, errors.

A command asks :class:`Session` for an API client; the token comes from ``--token`` /
``GRIDGATE_TOKEN`` if given, else from ``gridgate login``'s credentials file (refreshed
when it expired and a refresh token is there).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console

from gridgate.cli import exits
from gridgate.cli.api import ApiError, GridgateApi
from gridgate.cli.credentials import CredentialStore
from gridgate.cli.defaults import DEFAULT_URL
from gridgate.cli.oidc import DeviceFlow

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Session:
    """The command line's global options, resolved."""

    url: str = DEFAULT_URL
    token: str | None = None
    store: CredentialStore = field(default_factory=CredentialStore)
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    err: Console = field(
        default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True)
    )

    def access_token(self) -> str:
        if self.token:
            return self.token
        credential = self.store.get(self.url)
        if credential is None:
            raise ApiError(f"not logged in at {self.url}: run gridgate login", exits.AUTH)
        if credential.expired():
            flow = DeviceFlow(credential.issuer, credential.client_id)
            credential = flow.refresh(credential)
            self.store.put(self.url, credential)
        return credential.access_token

    def api(self, *, authenticated: bool = True) -> GridgateApi:
        return GridgateApi(self.url, self.access_token() if authenticated else None)

    def print_json(self, value: Any) -> None:
        # Plain print: machine output must not be wrapped or coloured.
        print(json.dumps(value, indent=2, sort_keys=False))


pass_session = click.make_pass_decorator(Session)


def handles_api_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`ApiError` into its message on stderr and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ApiError as exc:
            click.echo(f"gridgate: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper
