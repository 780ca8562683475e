"""``gridgate diracx-link``, ``diracx-links``, ``diracx-unlink``: a user's DiracX links."""

from __future__ import annotations

import time
import webbrowser
from datetime import UTC, datetime

import click

from gridgate.cli.session import Session, handles_api_errors, pass_session

POLL_S = 3.0


@click.command(name="diracx-link")
@click.argument("vo")
@click.option("--group", default=None, help="DiracX group (your first one of the VO if unset).")
@click.option("--open/--no-open", "open_browser", default=False, help="Open the browser.")
@pass_session
@handles_api_errors
def diracx_link(session: Session, vo: str, group: str | None, open_browser: bool) -> None:
    """Link your DiracX account for a VO: approve DiracX's login at your VO's IdP, once.

    \b
    Example:
      gridgate diracx-link cta
    """
    with session.api() as api:
        started = api.start_diracx_link(vo, group)
        where = started["verification_uri"]
        session.err.print(f"Open [bold]{where}[/] (code [bold]{started['user_code']}[/])")
        if open_browser:
            webbrowser.open(where)
        deadline = float(started.get("device_expires_at") or time.time() + 600)
        view = started
        while view["status"] != "linked" and time.time() < deadline:
            time.sleep(POLL_S)
            view = api.complete_diracx_link(started["vo"], started["group"])
    if view["status"] != "linked":
        raise click.ClickException("the DiracX login was not approved in time")
    ends = datetime.fromtimestamp(view["expires_at"], UTC).isoformat(timespec="seconds")
    session.err.print(
        f"Linked to DiracX as {view['diracx_user']} ({view['vo']}/{view['group']}) until {ends}"
    )


@click.command(name="diracx-links")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def diracx_links(session: Session, as_json: bool) -> None:
    """Your DiracX links and when each runs out."""
    with session.api() as api:
        links = api.diracx_links()
    if as_json:
        session.print_json(links)
        return
    for link in links:
        ends = link.get("expires_at")
        until = datetime.fromtimestamp(ends, UTC).isoformat(timespec="seconds") if ends else "-"
        session.out.print(f"{link['vo']}/{link['group']}  {link['status']}  until {until}")


@click.command(name="diracx-unlink")
@click.argument("vo")
@click.argument("group")
@pass_session
@handles_api_errors
def diracx_unlink(session: Session, vo: str, group: str) -> None:
    """Unlink your DiracX account for a VO and group."""
    with session.api() as api:
        api.unlink_diracx(vo, group)
    session.err.print(f"Unlinked {vo}/{group}")
