"""Dead letters fail their jobs, stay parked, and are re-driven: a running stack, on SQLite and
PostgreSQL, with the real RabbitMQ dead-lettering the messages."""

from __future__ import annotations

import asyncio
import inspect
import io
from typing import Any

import aio_pika
from prometheus_client import REGISTRY
from pydantic import SecretStr

from gridgate.broker import list_parked
from gridgate.broker.consumer import ATTEMPT_HEADER
from gridgate.contracts import GATEWAY_REPORTS_QUEUE, RESULTS_QUEUE
from gridgate.contracts.topology import COMMANDS_EXCHANGE
from gridgate.gateway import cli
from gridgate.gateway.config import GatewaySettings


def _counted(queue: str) -> float:
    return REGISTRY.get_sample_value("gridgate_dead_letters_total", {"queue": queue}) or 0.0


async def _eventually(check, timeout_s: float = 30.0) -> Any:  # type: ignore[no-untyped-def]
    """The first true value of ``check()`` (sync or async), polled until ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


async def _send_poison(stack: Any, queue: str, job_id: str, kind: str, attempt: int) -> None:
    """A message its consumer cannot decode: rejected, so RabbitMQ dead-letters it. The
    attempt header says how many times it was tried before, as after transient failures."""
    channel = await stack.connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
    await exchange.publish(
        aio_pika.Message(
            b'{"kind": "from-the-future", "job_id": "' + job_id.encode() + b'"}',
            type=kind,
            message_id=f"poison-{job_id}",
            headers={"job_id": job_id, ATTEMPT_HEADER: attempt},
        ),
        routing_key=queue,
    )
    await channel.close()


async def _create(http: Any) -> tuple[str, str]:
    created = await http.post("/api/jobs", data={"workflow": "hello-world"})
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    return url, url.rsplit("/", 1)[1]


async def _parked(stack: Any, queue: str, job_id: str) -> list[Any]:
    _, parked = (await list_parked(stack.connection, [queue], limit=1000))[queue]
    return [p for p in parked if p.job_id == job_id]


async def test_a_dead_lettered_command_fails_its_job_and_is_parked(api, stack) -> None:
    http = api("dead-letters-results")
    url, job_id = await _create(http)
    before = _counted(RESULTS_QUEUE)

    await _send_poison(stack, RESULTS_QUEUE, job_id, "collect-results", attempt=4)

    async def failed() -> dict[str, Any] | None:
        job = (await http.get(url)).json()
        return job if job["phase"] == "ERROR" else None

    job = await _eventually(failed)
    assert job["errorSummary"]["message"] == (
        "internal: the results of this job could not be collected after 5 attempts "
        "(CollectResults dead-lettered); an operator was alerted"
    )
    history = job["jobInfo"]["history"]
    assert history[-1]["to"] == "ERROR"
    await _eventually(lambda: _counted(RESULTS_QUEUE) == before + 1)
    parked = await _eventually(lambda: _parked(stack, RESULTS_QUEUE, job_id))
    assert [(p.kind, p.reason, p.attempts) for p in parked] == [("collect-results", "rejected", 5)]


async def test_a_dead_lettered_report_fails_its_job(api, stack) -> None:
    http = api("dead-letters-reports")
    url, job_id = await _create(http)
    before = _counted(GATEWAY_REPORTS_QUEUE)

    await _send_poison(stack, GATEWAY_REPORTS_QUEUE, job_id, "job-submitted", attempt=0)

    async def failed() -> dict[str, Any] | None:
        job = (await http.get(url)).json()
        return job if job["phase"] == "ERROR" else None

    job = await _eventually(failed)
    assert job["errorSummary"]["message"] == (
        "internal: a report on this job could not be recorded at its first attempt "
        "(JobSubmitted dead-lettered); an operator was alerted"
    )
    assert _counted(GATEWAY_REPORTS_QUEUE) == before + 1
    assert await _eventually(lambda: _parked(stack, GATEWAY_REPORTS_QUEUE, job_id))


async def test_redrive_puts_a_parked_message_back_on_its_work_queue(api, stack) -> None:
    http = api("dead-letters-redrive")
    _, job_id = await _create(http)
    await _send_poison(stack, RESULTS_QUEUE, job_id, "collect-results", attempt=4)
    assert await _eventually(lambda: _parked(stack, RESULTS_QUEUE, job_id))
    before = _counted(RESULTS_QUEUE)

    settings = GatewaySettings(broker_url=SecretStr(stack.broker_url))
    out = io.StringIO()
    # The command runs its own event loop, as from a shell: in a thread of its own here.
    await asyncio.to_thread(
        cli.dead_letters, ["redrive", "--queue", RESULTS_QUEUE, "--job", job_id], settings, out
    )
    assert out.getvalue() == f"1 parked message(s) of job {job_id} re-driven to {RESULTS_QUEUE}\n"

    # Back on gridgate.results, the results worker rejects it again (it is still poison):
    # dead-lettered and parked once more, this time at its first attempt (the count reset).
    await _eventually(lambda: _counted(RESULTS_QUEUE) == before + 1)
    parked = await _eventually(lambda: _parked(stack, RESULTS_QUEUE, job_id))
    assert [p.attempts for p in parked] == [1]

    listing = io.StringIO()
    await asyncio.to_thread(cli.dead_letters, ["list"], settings, listing)
    assert f"job={job_id} type=collect-results reason=rejected attempts=1" in listing.getvalue()
