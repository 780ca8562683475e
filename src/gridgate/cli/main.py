"""The server-side commands of ``gridgate``: dev (all services in one process), dev-token,
demo (a job, or a schedule). ``gridgate.cli.app`` puts them beside the client commands."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from gridgate.broker import BrokerUnreachableError, run_until_signalled
from gridgate.cli.demo import run_demo, run_schedule_demo
from gridgate.cli.stack import (
    AUDIENCE,
    DevStack,
    default_data_dir,
    dev_issuer,
    dev_issuer_key_file,
    dev_issuer_url,
)
from gridgate.core.logging import configure_logging
from gridgate.core.settings import DEFAULT_BROKER_URL
from gridgate.dirac.testbed import DEFAULT_ENV_FILE, DiracTestbed
from gridgate.dirac.testbed import FACILITY as TESTBED_FACILITY
from gridgate.diracx.testbed import DEFAULT_ENV_FILE as DIRACX_ENV_FILE
from gridgate.diracx.testbed import FACILITY as DIRACX_FACILITY
from gridgate.diracx.testbed import DiracXTestbed
from gridgate.iam.dev_issuer import DevIssuer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("dev", "run all six services on the embedded defaults"),
        ("demo", "start the services, run hello-world, print what happened"),
    ):
        # The demo runs on the facility given; dev serves every configured one.
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--port", type=int, default=8000 if name == "dev" else 8765)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--data-dir", type=Path, default=default_data_dir())
        sub.add_argument(
            "--broker-url",
            default=None,
            help="AMQP URL (default: GRIDGATE_BROKER_URL or local guest)",
        )
        sub.add_argument("--database-url", default=None, help="SQLAlchemy URL (default SQLite)")
        sub.add_argument(
            "--dirac-testbed",
            type=Path,
            nargs="?",
            const=DEFAULT_ENV_FILE,
            default=None,
            metavar="ENV_SH",
            help="serve the dirac-testbed facility too, from the testbed's env.sh "
            f"(default {DEFAULT_ENV_FILE}); the auth service then uses dirac-proxymanager",
        )
        sub.add_argument(
            "--diracx-testbed",
            type=Path,
            nargs="?",
            const=DIRACX_ENV_FILE,
            default=None,
            metavar="ENV_SH",
            help="serve the diracx-testbed facility too, from the testbed's env.sh "
            f"(default {DIRACX_ENV_FILE}); the auth service then mints DiracX tokens with the "
            "testbed's legacy-exchange key (diracx-exchange)",
        )
        sub.add_argument(
            "--image-registry",
            default=os.environ.get("GRIDGATE_REGISTRY", ""),
            help="registry of workflow images (e.g. the Docker testbed's 127.0.0.1:5000, plain "
            "HTTP on loopback); containerised workflows need it and --image-base",
        )
        sub.add_argument(
            "--image-base", default="", help="base image of recipes, in --image-registry"
        )
        if name == "dev":
            sub.add_argument(
                "--oidc-issuer",
                help="trust this OpenID provider instead of the development issuer; the web "
                "portal at / logs in there (e.g. the IdP testbed, http://127.0.0.1:9400)",
            )
            sub.add_argument(
                "--portal-resource",
                help="RFC 8707 resource the portal asks tokens for (the IdP testbed: urn:gridgate)",
            )
        if name == "demo":
            sub.add_argument(
                "--workflow",
                default="hello-world",
                help="the workflow to run (default hello-world; concordia-corsika runs in its "
                "container image, selected or built first)",
            )
            sub.add_argument(
                "--schedule",
                action="store_true",
                help="make an interval schedule of hello-world instead, watch it fire twice, "
                "delete it",
            )
            sub.add_argument(
                "--every-s",
                type=int,
                default=60,
                help="the schedule's interval in seconds (with --schedule; default 60)",
            )
    token = commands.add_parser("dev-token", help="print a token of the development issuer")
    token.add_argument("--user", required=True)
    token.add_argument("--group", action="append", default=[], help="IAM group, e.g. cta")
    token.add_argument("--lifetime", type=int, default=12 * 3600, help="seconds")
    token.add_argument("--port", type=int, default=8000)
    token.add_argument("--host", default="127.0.0.1")
    token.add_argument("--data-dir", type=Path, default=default_data_dir())
    token.add_argument(
        "--issuer",
        help="issuer URL (default: gridgate dev's, http://HOST:PORT/auth/dev-issuer); for a "
        "standalone auth service, its GRIDGATE_AUTH_DEV_ISSUER_URL",
    )
    token.add_argument(
        "--key-file",
        type=Path,
        help="the issuer's signing key (default: DATA_DIR/dev-issuer-key.json); for a "
        "standalone auth service, its GRIDGATE_AUTH_DEV_ISSUER_KEY_FILE",
    )
    token.add_argument("--audience", default=AUDIENCE, help="the gateway's OIDC_AUDIENCE")
    return parser


def _broker_url(value: str | None) -> str:
    return value or os.environ.get("GRIDGATE_BROKER_URL") or DEFAULT_BROKER_URL


def _stack(
    args: argparse.Namespace,
    testbed: DiracTestbed | None = None,
    diracx: DiracXTestbed | None = None,
) -> DevStack:
    gateway_options: dict[str, object] = {}
    if getattr(args, "portal_resource", None):
        gateway_options["portal_resource"] = args.portal_resource
    if getattr(args, "schedule", False):
        # The demo's schedule fires every --every-s: let it, and look for it every second.
        gateway_options |= {
            "min_schedule_interval_s": min(args.every_s, 300),
            "schedule_interval_s": 1.0,
        }
    images: dict[str, object] = {}
    if args.image_registry:
        loopback = args.image_registry.startswith(("127.", "localhost"))
        images = {"image_registry": args.image_registry, "image_registry_insecure": loopback}
        gateway_options = {**gateway_options, **images}
    return DevStack(
        data_dir=args.data_dir,
        submitter_options={**images, "image_base": args.image_base} if images else {},
        host=args.host,
        port=args.port,
        broker_url=_broker_url(args.broker_url),
        database_url=args.database_url,
        dirac_facilities={TESTBED_FACILITY: testbed.connection} if testbed else {},
        diracx_facilities={DIRACX_FACILITY: diracx.connection} if diracx else {},
        auth_options={
            **(testbed.auth_options() if testbed else {}),
            **(diracx.auth_options() if diracx else {}),
        },
        gateway_options=gateway_options,
        oidc_issuer=getattr(args, "oidc_issuer", None),
    )


def _testbed(args: argparse.Namespace) -> DiracTestbed | None:
    return DiracTestbed.from_env_file(args.dirac_testbed) if args.dirac_testbed else None


def _diracx(args: argparse.Namespace) -> DiracXTestbed | None:
    return DiracXTestbed.from_env_file(args.diracx_testbed) if args.diracx_testbed else None


async def _dev(args: argparse.Namespace) -> int:
    stack = _stack(args, _testbed(args), _diracx(args))

    async def start() -> None:
        await stack.start()
        print(f"gridgate is serving {stack.url} (API docs: {stack.url}/docs)", flush=True)
        print(f"token: gridgate dev-token --user alice --group cta --port {args.port}", flush=True)

    await run_until_signalled(start, stack.stop)
    return 0


async def _demo(args: argparse.Namespace) -> int:
    testbed = _testbed(args)
    diracx = _diracx(args)
    stack = _stack(args, testbed, diracx)
    await stack.start()
    try:
        # On a testbed the demo user is its alice: an IAM subject its registry knows.
        user = testbed.alice_sub if testbed else diracx.subs["alice"] if diracx else "demo-user"
        token = dev_issuer(args.data_dir, args.host, args.port).mint(
            user, groups=["cta"], audience=AUDIENCE, lifetime_s=3600
        )
        if args.schedule:
            return await run_schedule_demo(stack.url, token, every_s=args.every_s)
        workflow = args.workflow
        parameters: dict[str, str] | None = None if workflow == "hello-world" else {}
        if diracx is not None and testbed is None:
            return await run_demo(
                stack.url,
                token,
                workflow=workflow,
                parameters=parameters,
                facility=DIRACX_FACILITY,
                timeout_s=300,
            )
        if testbed is None:
            return await run_demo(stack.url, token, workflow=workflow, parameters=parameters)
        return await run_demo(
            stack.url,
            token,
            workflow=workflow,
            parameters=parameters,
            facility=TESTBED_FACILITY,
            timeout_s=300,
        )
    finally:
        await stack.stop()


def run(argv: list[str] | None = None) -> None:
    """Every ``gridgate`` command, client and server (the console script is
    ``gridgate.cli.app:run``)."""
    from gridgate.cli.app import run as run_cli

    run_cli(argv)


def run_server_command(argv: list[str]) -> None:
    """``gridgate dev|demo|dev-token ...``, parsed as they always were."""
    args = _parser().parse_args(argv)
    if args.command == "dev-token":
        issuer = DevIssuer(
            args.issuer or dev_issuer_url(args.host, args.port),
            args.key_file or dev_issuer_key_file(args.data_dir),
        )
        print(
            issuer.mint(
                args.user, groups=args.group, audience=args.audience, lifetime_s=args.lifetime
            )
        )
        return
    configure_logging(level="WARNING" if args.command == "demo" else "INFO")
    runner = _dev if args.command == "dev" else _demo
    try:
        sys.exit(asyncio.run(runner(args)))
    except BrokerUnreachableError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        sys.exit(3)
