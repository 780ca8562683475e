"""Operator commands of ``gridgate-gateway`` beyond serving: ``dead-letters list|redrive``.

Dead letters are parked by the running gateway (docs/operations.md, "Dead letters"); these
commands show them and put them back on their work queue once their cause is fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from gridgate.broker import connect, list_parked, redrive
from gridgate.broker.topology import WORK_QUEUES
from gridgate.gateway.config import GatewaySettings

COMMAND = "dead-letters"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"gridgate-gateway {COMMAND}",
        description="Show parked dead letters, or put them back on their work queue.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="parked messages per work queue")
    listing.add_argument("--limit", type=int, default=50, help="messages shown per queue")
    again = verbs.add_parser("redrive", help="republish parked messages to their work queue")
    again.add_argument("--queue", required=True, choices=WORK_QUEUES, help="the work queue")
    again.add_argument("--job", default=None, help="only the messages of this job")
    return parser


async def show_parked(broker_url: str, limit: int, out: TextIO) -> None:
    connection = await connect(broker_url)
    try:
        listing = await list_parked(connection, WORK_QUEUES, limit=limit)
    finally:
        await connection.close()
    for queue, (count, parked) in listing.items():
        print(f"{queue}.parked: {count} message(s)", file=out)
        for message in parked:
            print(
                f"  job={message.job_id or '-'} type={message.kind or '-'} "
                f"reason={message.reason} attempts={message.attempts} "
                f"dead-at={message.dead_at or '-'} id={message.message_id or '-'}",
                file=out,
            )


async def redrive_parked(broker_url: str, queue: str, job_id: str | None, out: TextIO) -> int:
    connection = await connect(broker_url)
    try:
        moved = await redrive(connection, queue, job_id=job_id)
    finally:
        await connection.close()
    which = f" of job {job_id}" if job_id else ""
    print(f"{moved} parked message(s){which} re-driven to {queue}", file=out)
    return moved


def dead_letters(argv: list[str], settings: GatewaySettings, out: TextIO | None = None) -> None:
    """``gridgate-gateway dead-letters list [--limit N]``, or
    ``gridgate-gateway dead-letters redrive --queue Q [--job ID]``."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    broker_url = settings.broker_url.get_secret_value()
    if args.verb == "list":
        asyncio.run(show_parked(broker_url, args.limit, out))
    else:
        asyncio.run(redrive_parked(broker_url, args.queue, args.job, out))
