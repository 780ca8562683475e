"""A TCP proxy a test controls: forward, refuse or swallow traffic to a real server.

Outage tests need the server itself to stay up (it is shared); the proxy stands between the
process under test and the server and fails the way a network or a host does.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum


class ProxyMode(Enum):
    FORWARD = "forward"
    """Pass bytes both ways."""
    REFUSE = "refuse"
    """Reset open connections and refuse new ones, as a stopped server does."""
    BLACKHOLE = "blackhole"
    """Accept and hold connections, pass nothing: a hung host or a dropped route."""


class TcpProxy:
    """Listens on 127.0.0.1 and forwards to ``upstream`` while in :attr:`ProxyMode.FORWARD`.

    Parameters
    ----------
    upstream_host, upstream_port
        The real server.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = ProxyMode.FORWARD
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self._stop_listening()
        self._reset_all()

    async def set_mode(self, mode: ProxyMode) -> None:
        """Switch mode; the port stays the same, so clients reconnect to the same address."""
        self.mode = mode
        if mode is ProxyMode.FORWARD:
            self._flowing.set()
            if self._server is None:
                await self.start(self.port)
            return
        self._flowing.clear()
        if mode is ProxyMode.REFUSE:
            await self._stop_listening()
            self._reset_all()
        elif self._server is None:
            await self.start(self.port)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            # A connection made during a blackhole waits here, as a SYN to a dead host does.
            await self._flowing.wait()
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for end in (writer, up_writer):
            self._writers.discard(end)
            end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                # Bytes read during a blackhole are held, not delivered: nothing gets through.
                await self._flowing.wait()
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
