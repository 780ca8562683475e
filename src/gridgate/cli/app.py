"""``gridgate``: the client commands over the public HTTP API, beside dev, demo, dev-token.

The client commands (one group per module in :mod:`gridgate.cli.commands`) use only
:mod:`gridgate.cli.api`; the server commands keep their own argument parser
(:mod:`gridgate.cli.main`) and are handed their arguments untouched.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from gridgate.cli import exits
from gridgate.cli.defaults import DEFAULT_URL

EXIT_CODES = "\n".join(
    f"  {value:2}  {name.lower().replace('_', '-')}"
    for name, value in sorted(exits.ALL.items(), key=lambda item: item[1])
)


class _Commands(click.Group):
    """The client commands load when one of them (or the list of all) is asked for: a server
    command such as ``gridgate dev`` runs the services in this process and uses none of them
    (ADR 0019)."""

    client_loaded = False

    def _load_client(self) -> None:
        if self.client_loaded:
            return
        self.client_loaded = True
        from gridgate.cli.commands import account, catalogue, diracx, jobs, results, schedules

        for command in (
            account.login,
            account.logout,
            account.whoami,
            catalogue.workflows,
            catalogue.workflow,
            catalogue.facilities,
            jobs.submit,
            jobs.list_jobs,
            jobs.status,
            jobs.watch,
            jobs.logs,
            jobs.abort,
            jobs.delete,
            results.results,
            schedules.schedules,
            diracx.diracx_link,
            diracx.diracx_links,
            diracx.diracx_unlink,
        ):
            self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_client()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._load_client()
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=f"""\b
Examples:
  gridgate login --issuer https://iam.example.org/
  gridgate workflows --keyword cta
  gridgate submit hello-world -p name=Ada --wait
  gridgate jobs --phase EXECUTING --json
  gridgate results JOB_ID -o out/

\b
Exit codes:
{EXIT_CODES}

\b
Shell completion:  eval "$(gridgate completion bash)"   (or zsh, fish)""",
)
@click.option(
    "--url",
    envvar="GRIDGATE_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The gateway (env GRIDGATE_URL).",
)
@click.option(
    "--token",
    envvar="GRIDGATE_TOKEN",
    default=None,
    show_default=False,
    help="A bearer token to use instead of gridgate login's (env GRIDGATE_TOKEN).",
)
@click.pass_context
def cli(context: click.Context, url: str, token: str | None) -> None:
    """gridgate: run catalogued workflows on grid facilities.

    The client commands talk to a gridgate gateway over its public HTTP API, with the token
    kept by `gridgate login` (or --token). `dev`, `demo` and `dev-token` run gridgate itself.
    """
    if context.invoked_subcommand in SERVER_COMMANDS:
        return  # they parse their own options and talk to no gateway
    from gridgate.cli.session import Session

    context.obj = Session(url=url.rstrip("/"), token=token)


SERVER_COMMANDS = {
    "dev": "Run all five services in one process (see gridgate dev --help).",
    "demo": "Start the services, run hello-world (or a schedule), print what happened.",
    "dev-token": "Print a token of the development issuer.",
}


def _server_command(name: str, text: str) -> click.Command:
    @click.command(
        name=name,
        help=text,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.pass_context
    def passthrough(context: click.Context) -> None:
        from gridgate.cli.main import run_server_command

        run_server_command([name, *context.args])

    return passthrough


for _name, _text in SERVER_COMMANDS.items():
    cli.add_command(_server_command(_name, _text))


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(gridgate completion bash)"."""
    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "gridgate", "_GRIDGATE_COMPLETE").source())


def run(argv: list[str] | None = None) -> None:
    """The ``gridgate`` console script. The client commands import no service code, so
    they start fast; the server commands import it when they run."""
    cli.main(args=argv, prog_name="gridgate")
