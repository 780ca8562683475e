"""aio-pika plumbing shared by every service: connection, topology, publishing, consuming."""

from gridgate.broker.connection import (
    BrokerUnreachableError,
    connect,
    connect_when_up,
    is_connected,
)
from gridgate.broker.consumer import Consumer, HandlerOutcome
from gridgate.broker.dead_letters import DeadLetter, DeadLetterWatcher, list_parked, redrive
from gridgate.broker.errors import BrokerUnavailableError
from gridgate.broker.leases import BrokerLeases, Lease
from gridgate.broker.lifecycle import (
    run_until_signalled,
    run_with_health,
    serve_connected,
)
from gridgate.broker.publisher import Publisher
from gridgate.broker.rpc import RpcClient, RpcServer
from gridgate.broker.stopping import stop_step
from gridgate.broker.topology import declare_topology
from gridgate.broker.worker import QueueWorker, serve_worker

__all__ = [
    "BrokerLeases",
    "BrokerUnavailableError",
    "BrokerUnreachableError",
    "Consumer",
    "DeadLetter",
    "DeadLetterWatcher",
    "HandlerOutcome",
    "Lease",
    "Publisher",
    "QueueWorker",
    "RpcClient",
    "RpcServer",
    "connect",
    "connect_when_up",
    "declare_topology",
    "is_connected",
    "list_parked",
    "redrive",
    "run_until_signalled",
    "run_with_health",
    "serve_connected",
    "serve_worker",
    "stop_step",
]
