"""The process-wide TLS client contexts: built once per builder, and as strict as the
builder makes them."""

from __future__ import annotations

import ssl

import httpx

from gridgate.core.tls import shared_tls_context


def test_one_context_per_builder() -> None:
    first = shared_tls_context(httpx.create_ssl_context)
    assert shared_tls_context(httpx.create_ssl_context) is first
    assert shared_tls_context(ssl.create_default_context) is not first


def test_shared_contexts_verify_as_their_builders_do() -> None:
    for build in (httpx.create_ssl_context, ssl.create_default_context):
        shared, fresh = shared_tls_context(build), build()
        assert shared.verify_mode == fresh.verify_mode == ssl.CERT_REQUIRED
        assert shared.check_hostname and fresh.check_hostname
        assert shared.cert_store_stats() == fresh.cert_store_stats()
