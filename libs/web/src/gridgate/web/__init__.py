"""FastAPI helpers shared by the HTTP services: problem+json, body limits, authentication."""

from gridgate.web.auth import BearerAuthenticator
from gridgate.web.limits import BodySizeLimitMiddleware
from gridgate.web.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers, problem_response

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "BearerAuthenticator",
    "BodySizeLimitMiddleware",
    "install_problem_handlers",
    "problem_response",
]
