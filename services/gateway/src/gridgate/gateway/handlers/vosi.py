"""IVOA VOSI 1.1: ``/availability`` and ``/capabilities``, so that registries and IVOA
clients can discover the UWS service. Both are public, as VOSI expects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from pydantic import AnyUrl

from gridgate.gateway.handlers.health import readiness_checks

if TYPE_CHECKING:
    # Imported where used: vo-models costs memory that a gateway nobody asks VOSI of
    # never needs (the same as the UWS XML renderer's).
    from vo_models.voresource.models import Capability
    from vo_models.vosi.availability.models import Availability
    from vo_models.vosi.capabilities.models import VOSICapabilities

router = APIRouter(tags=["vosi"])

XML_MEDIA_TYPE = "application/xml"
UWS_STANDARD = "ivo://ivoa.net/std/UWS#rest-1.1"
CAPABILITIES_STANDARD = "ivo://ivoa.net/std/VOSI#capabilities"
AVAILABILITY_STANDARD = "ivo://ivoa.net/std/VOSI#availability"
BEARER_TOKENS = "ivo://ivoa.net/sso#OAuth"
"""IVOA SSO's identifier for OAuth 2 bearer tokens: what the job list needs."""

_started = datetime.now(UTC)


def _xml_answer(what: str, schema: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"{what} ({schema}).",
            "content": {XML_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    }


def _xml(model: Availability | VOSICapabilities) -> Response:
    body = model.to_xml(encoding="UTF-8", xml_declaration=True, skip_empty=True)
    return Response(body, media_type=XML_MEDIA_TYPE)


@router.get(
    "/availability",
    response_class=Response,
    responses=_xml_answer("VOSI availability", "http://www.ivoa.net/xml/VOSIAvailability/v1.0"),
)
async def availability(request: Request) -> Response:
    """Whether the service can take jobs now: the checks of ``/readyz``, as VOSI says it."""
    checks = await readiness_checks(request)
    failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
    from vo_models.vosi.availability.models import Availability

    return _xml(
        Availability(
            available=not failing,
            up_since=_started if not failing else None,
            note=failing or ["gridgate accepts jobs"],
        )
    )


def _capability(standard: str, url: str, *, secured: bool = False) -> Capability:
    from vo_models.vodataservice.models import ParamHTTP
    from vo_models.voresource.models import AccessURL, Capability, SecurityMethod

    interface = ParamHTTP(
        role="std",
        access_url=[AccessURL(value=AnyUrl(url), use="full" if not secured else "base")],
        security_method=[SecurityMethod(standard_id=AnyUrl(BEARER_TOKENS))] if secured else [],
    )
    return Capability(standard_id=AnyUrl(standard), interface=[interface])


@router.get(
    "/capabilities",
    response_class=Response,
    responses=_xml_answer("VOSI capabilities", "http://www.ivoa.net/xml/VOSICapabilities/v1.0"),
)
async def capabilities(request: Request) -> Response:
    """The VOSI endpoints and the UWS 1.1 job list, with their URLs."""
    base = str(request.base_url).rstrip("/")
    from vo_models.vosi.capabilities.models import VOSICapabilities

    return _xml(
        VOSICapabilities(
            capability=[
                _capability(CAPABILITIES_STANDARD, f"{base}/capabilities"),
                _capability(AVAILABILITY_STANDARD, f"{base}/availability"),
                _capability(UWS_STANDARD, f"{base}/api/jobs", secured=True),
            ]
        )
    )
