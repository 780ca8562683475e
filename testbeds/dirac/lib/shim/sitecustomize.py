"""Loopback-only binds for the DIRAC testbed servers (this folder goes on their PYTHONPATH).

DIRAC 8.0's DISET ``ServiceReactor`` binds ``("", port)`` on a dual-stack socket and has no
option for the listen address; the testbed must not listen beyond 127.0.0.1. Wildcard binds
are rewritten: AF_INET -> 127.0.0.1, dual-stack AF_INET6 -> ::ffff:127.0.0.1, v6-only -> ::1.
DIRAC itself is not modified. Clients do not need this file.
"""

import socket as _socket

_orig_bind = _socket.socket.bind


def _loopback_bind(self: _socket.socket, address: object) -> None:
    try:
        if isinstance(address, tuple) and address and address[0] in ("", "0.0.0.0", "::"):
            if self.family == _socket.AF_INET:
                address = ("127.0.0.1", *address[1:])
            elif self.family == _socket.AF_INET6:
                v6only = self.getsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY)
                address = ("::1" if v6only else "::ffff:127.0.0.1", *address[1:])
    except OSError:  # never break the caller: fall back to what it asked for
        pass
    return _orig_bind(self, address)  # type: ignore[arg-type]


_socket.socket.bind = _loopback_bind  # type: ignore[method-assign]
