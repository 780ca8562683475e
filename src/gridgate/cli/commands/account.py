"""``gridgate login``, ``logout``, ``whoami``."""

from __future__ import annotations

import base64
import json
import time
import webbrowser
from datetime import UTC, datetime
from typing import Any

import click

from gridgate.cli import exits
from gridgate.cli.api import ApiError
from gridgate.cli.oidc import DEFAULT_SCOPE, DeviceFlow
from gridgate.cli.session import Session, handles_api_errors, pass_session


@click.command()
@click.option("--issuer", envvar="GRIDGATE_ISSUER", required=True, help="OIDC issuer URL.")
@click.option(
    "--client-id",
    envvar="GRIDGATE_CLIENT_ID",
    default="gridgate-cli",
    show_default=True,
    help="The public client registered at the issuer for the device flow.",
)
@click.option("--scope", default=DEFAULT_SCOPE, show_default=True)
@click.option(
    "--resource",
    envvar="GRIDGATE_RESOURCE",
    help="RFC 8707 resource indicator, where the issuer wants one (e.g. urn:gridgate).",
)
@click.option("--open/--no-open", "open_browser", default=False, help="Open the browser.")
@pass_session
@handles_api_errors
def login(
    session: Session,
    issuer: str,
    client_id: str,
    scope: str,
    resource: str | None,
    open_browser: bool,
) -> None:
    """Log in with the OIDC device flow; the token is kept in a 0600 file.

    \b
    Example:
      gridgate --url https://gridgate.example.org login --issuer https://iam.example.org/
    """
    flow = DeviceFlow(issuer, client_id, scope=scope, resource=resource)
    code = flow.start()
    where = code.verification_uri_complete or code.verification_uri
    session.err.print(f"Open [bold]{where}[/] and enter the code [bold]{code.user_code}[/]")
    session.err.print(f"(waiting up to {code.expires_in // 60} min for you to approve)")
    if open_browser:
        webbrowser.open(where)
    credential = flow.poll(code)
    session.store.put(session.url, credential)
    claims = token_claims(credential.access_token)
    session.err.print(f"Logged in at {session.url} as {claims.get('sub', '?')}")


@click.command()
@pass_session
def logout(session: Session) -> None:
    """Forget the token kept for this gateway."""
    removed = session.store.remove(session.url)
    session.err.print(f"Logged out of {session.url}" if removed else "Not logged in.")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def whoami(session: Session, as_json: bool) -> None:
    """Who the token says you are, and whether the gateway accepts it."""
    token = session.access_token()
    claims = token_claims(token)
    with session.api() as api:
        try:
            api.request("GET", "/api/jobs", params={"limit": 1})
            accepted, reason = True, None
        except ApiError as exc:
            accepted, reason = False, str(exc)
    groups = claims.get("wlcg.groups") or claims.get("groups") or []
    expires = claims.get("exp")
    view = {
        "gateway": session.url,
        "sub": claims.get("sub"),
        "issuer": claims.get("iss"),
        "groups": groups,
        "expires": datetime.fromtimestamp(expires, UTC).isoformat() if expires else None,
        "accepted": accepted,
    }
    if as_json:
        session.print_json(view)
    else:
        left = f" ({int((expires - time.time()) // 60)} min left)" if expires else ""
        session.out.print(f"{view['sub']} at {view['issuer']}, groups {', '.join(groups)}")
        session.out.print(f"token expires {view['expires']}{left}")
        session.out.print(
            f"accepted by {session.url}" if accepted else f"refused by {session.url}: {reason}"
        )
    if not accepted:
        raise SystemExit(exits.AUTH)


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified: for display only, the gateway verifies."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}
