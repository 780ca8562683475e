"""Our side of the DIRAC bridge: a small pool of bridge processes, JSON lines over pipes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gridgate.core.errors import TransientError, UsageError

log = structlog.get_logger(__name__)
BRIDGE_MAIN = Path(__file__).with_name("bridge_main.py")
LINE_LIMIT = 64 * 1024 * 1024


class BridgeCallError(UsageError):
    """DIRAC refused a request for a reason that a retry will not change."""


@dataclass
class DiracEnvironment:
    """How to start DIRAC's Python: its interpreter, environment and configuration options."""

    python: Path
    env: dict[str, str] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)


class _BridgeProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class DiracBridge:
    """Calls DIRAC through ``size`` bridge processes; each serves one request at a time.

    Proxies cross the pipe in memory; the bridge hands them to DIRAC as strings.
    """

    def __init__(
        self, environment: DiracEnvironment, *, size: int = 2, timeout_s: float = 300.0
    ) -> None:
        self.environment = environment
        self.size = size
        self.timeout_s = timeout_s
        self._processes: list[_BridgeProcess] = []
        self._ids = itertools.count(1)
        self._next = itertools.cycle(range(size))
        self._start_lock = asyncio.Lock()

    async def _spawn(self) -> _BridgeProcess:
        env = {**os.environ, **self.environment.env}
        process = await asyncio.create_subprocess_exec(
            str(self.environment.python),
            str(BRIDGE_MAIN),
            *self.environment.options,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=LINE_LIMIT,
        )
        return _BridgeProcess(process)

    async def _process(self) -> _BridgeProcess:
        async with self._start_lock:
            while len(self._processes) < self.size:
                self._processes.append(await self._spawn())
            index = next(self._next)
            if not self._processes[index].alive:
                self._processes[index] = await self._spawn()
            return self._processes[index]

    async def call(
        self, op: str, args: dict[str, Any] | None = None, *, proxy: bytes | str | None = None
    ) -> Any:
        """Run one DIRAC operation; TransientError or BridgeCallError when it fails."""
        bridge = await self._process()
        request = {
            "id": next(self._ids),
            "op": op,
            "args": args or {},
            "proxy": proxy.decode() if isinstance(proxy, bytes) else proxy,
        }
        async with bridge.lock:
            assert bridge.process.stdin is not None and bridge.process.stdout is not None
            try:
                bridge.process.stdin.write(json.dumps(request).encode() + b"\n")
                await bridge.process.stdin.drain()
                line = await asyncio.wait_for(bridge.process.stdout.readline(), self.timeout_s)
            except (TimeoutError, ConnectionError, BrokenPipeError) as exc:
                bridge.process.kill()
                raise TransientError(f"the DIRAC bridge did not answer {op}: {exc!r}") from exc
        if not line:
            raise TransientError(f"the DIRAC bridge exited during {op}")
        answer = json.loads(line)
        if answer.get("ok"):
            return answer.get("value")
        error = str(answer.get("error"))
        if answer.get("transient"):
            raise TransientError(f"DIRAC {op}: {error}")
        raise BridgeCallError(f"DIRAC {op}: {error}")

    async def close(self) -> None:
        for bridge in self._processes:
            if bridge.alive and bridge.process.stdin is not None:
                bridge.process.stdin.close()
        for bridge in self._processes:
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(bridge.process.wait(), 10)
            if bridge.alive:
                bridge.process.kill()
        self._processes.clear()
