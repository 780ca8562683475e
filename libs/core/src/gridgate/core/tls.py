"""One TLS client context per way of building it, for the whole process.

Every HTTP client otherwise builds a context of its own and parses the CA bundle again:
about 0.9 MiB and 40 ms each, and ``gridgate dev`` built nine at start (ADR 0019). A
context is safe to share between clients as long as nobody changes it: a client that needs
a certificate of its own or another CA builds its own context.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from functools import cache


@cache
def shared_tls_context(build: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """The context ``build()`` makes, built once per process: pass the same function (for
    instance ``httpx.create_ssl_context`` for httpx's default trust, or
    ``ssl.create_default_context`` for the system's CAs) to get the same context back.
    Never modify what it returns."""
    return build()
