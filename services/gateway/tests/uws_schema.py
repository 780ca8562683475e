"""The UWS 1.1 schema (copied into the repository; see schemas/README.md) as a validator."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).parent / "schemas"


@cache
def uws_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "UWS-1.1-local.xsd")))


def assert_valid_uws(document: bytes) -> etree._Element:
    """Parse ``document`` and fail with the schema's own messages unless it is valid UWS 1.1."""
    root = etree.fromstring(document)
    schema = uws_schema()
    assert schema.validate(root), f"{schema.error_log}\n{document.decode(errors='replace')}"
    return root
