"""An asynchronous client of Rucio's REST API (the calls gridgate needs), over httpx.

The official ``rucio-clients`` package is blocking (``requests``); gridgate's services run on
asyncio, so this client speaks the same REST API with httpx. It logs in with userpass, keeps
the token until shortly before it expires, and logs in again on a 401.

Every write is idempotent where Rucio lets it be: an existing dataset, an already attached
file or a duplicate rule is not an error, so a redelivered message can repeat the whole
registration.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from gridgate.datalake.dids import Did
from gridgate.datalake.storage import tls_context

log = structlog.get_logger(__name__)

JSON_STREAM = "application/x-json-stream"
TOKEN_HEADER = "X-Rucio-Auth-Token"  # noqa: S105 - a header name
# A token is renewed this long before Rucio says it expires.
TOKEN_MARGIN_S = 300.0
# Rucio answers 409 with these exception classes when the thing already exists.
ALREADY_THERE = {"DataIdentifierAlreadyExists", "FileAlreadyExists", "DuplicateContent"}
# A 5xx with one of these (or none) is the server's trouble; Rucio also answers 500 for some
# refusals (AccountNotFound), which no retry mends.
SERVER_TROUBLE = {"", "RucioException", "DatabaseException", "ServiceUnavailable"}


class RucioError(Exception):
    """Rucio refused a request.

    Attributes
    ----------
    status
        The HTTP status.
    exception_class
        Rucio's ``ExceptionClass`` (e.g. ``DataIdentifierNotFound``), or empty.
    """

    def __init__(self, status: int, exception_class: str, message: str) -> None:
        super().__init__(f"Rucio {status} {exception_class}: {message}")
        self.status = status
        self.exception_class = exception_class
        self.message = message


class RucioUnavailableError(RucioError):
    """Rucio did not answer, or answered with a server error: worth trying again later."""


class DidNotFoundError(RucioError):
    """The DID does not exist."""


def _error(response: httpx.Response) -> RucioError:
    exception_class = response.headers.get("ExceptionClass", "")
    message = response.text[:500]
    try:
        body = response.json()
        exception_class = str(body.get("ExceptionClass") or exception_class)
        message = str(body.get("ExceptionMessage") or message)
    except (ValueError, AttributeError):
        pass
    if response.status_code >= 500 and exception_class in SERVER_TROUBLE:
        return RucioUnavailableError(response.status_code, exception_class, message)
    if exception_class in {"DataIdentifierNotFound", "ScopeNotFound"}:
        return DidNotFoundError(response.status_code, exception_class, message)
    return RucioError(response.status_code, exception_class, message)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _dids(dids: Iterable[Did]) -> list[dict[str, str]]:
    return [{"scope": d.scope, "name": d.name} for d in dids]


class RucioClient:
    """One Rucio server, one account, userpass authentication.

    Parameters
    ----------
    url
        Base URL of the Rucio REST server (``https://rucio.example.org``).
    account, username, password
        The account to act as and its userpass identity.
    ca_file
        CA bundle to verify the server with; the system's when ``None``.
    timeout_s
        Timeout of each request.
    """

    def __init__(
        self,
        url: str,
        account: str,
        username: str,
        password: str,
        *,
        ca_file: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.account = account
        self._username = username
        self._password = password
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout_s,
            verify=tls_context(ca_file),
            headers={"X-Rucio-Account": account},
        )
        self._token: str | None = None
        self._token_valid_until = 0.0
        self._login_lock = asyncio.Lock()

    def __repr__(self) -> str:  # never show the password
        return f"RucioClient({self.url!r}, account={self.account!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RucioClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----- plumbing -----------------------------------------------------------------------

    async def _login(self) -> str:
        async with self._login_lock:
            if self._token is not None and time.time() < self._token_valid_until:
                return self._token
            try:
                response = await self._http.get(
                    "/auth/userpass",
                    headers={
                        "X-Rucio-Username": self._username,
                        "X-Rucio-Password": self._password,
                    },
                )
            except httpx.HTTPError as exc:
                raise RucioUnavailableError(0, "", f"cannot reach {self.url}: {exc}") from exc
            if response.status_code != 200:
                raise _error(response)
            token = response.headers[TOKEN_HEADER]
            expires = response.headers.get("X-Rucio-Auth-Token-Expires")
            valid_until = time.time() + 3600.0
            if expires:
                try:
                    valid_until = parsedate_to_datetime(expires).timestamp()
                except (TypeError, ValueError):
                    pass
            self._token = token
            self._token_valid_until = valid_until - TOKEN_MARGIN_S
            log.debug("rucio login", url=self.url, account=self.account)
            return token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        accept: str | None = None,
    ) -> httpx.Response:
        for attempt in (1, 2):
            token = await self._login()
            headers = {TOKEN_HEADER: token}
            if accept:
                headers["Accept"] = accept
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    content=json.dumps(body) if body is not None else None,
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                raise RucioUnavailableError(0, "", f"{method} {path}: {exc}") from exc
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired or revoked: log in once more
                continue
            return response
        raise AssertionError("unreachable")

    async def _ok(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._request(method, path, **kwargs)
        if response.status_code >= 300:
            raise _error(response)
        return response

    @staticmethod
    def _did_path(did: Did) -> str:
        # The name may hold '/': Rucio's routes take it verbatim after the scope.
        return f"/dids/{did.scope}/{did.name}"

    # ----- reading ------------------------------------------------------------------------

    async def ping(self) -> str:
        """The server's version."""
        response = await self._http.get("/ping")
        if response.status_code != 200:
            raise _error(response)
        return str(response.json().get("version", ""))

    async def whoami(self) -> str:
        """The account the token speaks for (a check of the credentials)."""
        response = await self._ok("GET", f"/accounts/{self.account}")
        return str(response.json()["account"])

    async def get_did(self, did: Did) -> dict[str, Any]:
        """The DID's record: ``type`` (FILE, DATASET, CONTAINER), ``bytes``, ``adler32``..."""
        result: dict[str, Any] = (await self._ok("GET", self._did_path(did))).json()
        return result

    async def list_files(self, did: Did) -> list[dict[str, Any]]:
        """The files of a dataset or container (recursively), or the file itself."""
        response = await self._ok("GET", self._did_path(did) + "/files", accept=JSON_STREAM)
        return _json_lines(response.text)

    async def list_content(self, did: Did) -> list[dict[str, Any]]:
        """The DIDs directly attached to a dataset or container."""
        response = await self._ok("GET", self._did_path(did) + "/dids", accept=JSON_STREAM)
        return _json_lines(response.text)

    async def list_replicas(
        self, dids: Sequence[Did], schemes: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Replicas of files (datasets expand to their files), with PFNs and checksums."""
        body: dict[str, Any] = {"dids": _dids(dids)}
        if schemes:
            body["schemes"] = list(schemes)
        response = await self._ok("POST", "/replicas/list", body=body, accept=JSON_STREAM)
        return _json_lines(response.text)

    async def get_json_metadata(self, did: Did) -> dict[str, Any]:
        """Free-form metadata (Rucio's JSON plugin)."""
        response = await self._ok("GET", self._did_path(did) + "/meta", params={"plugin": "JSON"})
        result: dict[str, Any] = response.json()
        return result

    async def lfns2pfns(
        self, rse: str, dids: Sequence[Did], *, scheme: str, operation: str = "write"
    ) -> dict[Did, str]:
        """Where each DID's replica lives (deterministic RSEs): the PFN for ``scheme``."""
        params = [("lfn", str(d)) for d in dids] + [("scheme", scheme), ("operation", operation)]
        response = await self._ok("GET", f"/rses/{rse}/lfns2pfns", params=params)
        found = response.json()
        return {d: str(found[str(d)]) for d in dids}

    async def list_rules(self, did: Did) -> list[dict[str, Any]]:
        response = await self._ok("GET", self._did_path(did) + "/rules", accept=JSON_STREAM)
        return _json_lines(response.text)

    # ----- writing (idempotent) -----------------------------------------------------------

    async def add_dataset(self, did: Did) -> bool:
        """Create an open dataset; ``False`` if it existed already."""
        response = await self._request(
            "POST", self._did_path(did), body={"type": "DATASET", "meta": {}}
        )
        if response.status_code == 409 and _error(response).exception_class in ALREADY_THERE:
            return False
        if response.status_code >= 300:
            raise _error(response)
        return True

    async def set_json_metadata(self, did: Did, meta: Mapping[str, Any]) -> None:
        """Set free-form keys (JSON plugin); setting the same values again changes nothing."""
        await self._ok("POST", self._did_path(did) + "/meta", body={"meta": dict(meta)})

    async def set_json_metadata_bulk(self, items: Sequence[tuple[Did, Mapping[str, Any]]]) -> None:
        """Set free-form keys on many DIDs in one request."""
        if items:
            body = {"dids": [{"scope": d.scope, "name": d.name, "meta": dict(m)} for d, m in items]}
            await self._ok("POST", "/dids/bulkdidsmeta", body=body)

    async def add_replicas(self, rse: str, files: Sequence[Mapping[str, Any]]) -> None:
        """Register replicas (``scope``, ``name``, ``bytes``, ``adler32``) on ``rse``.

        Registering a replica that exists again is accepted by Rucio without change.
        """
        await self._ok("POST", "/replicas", body={"rse": rse, "files": [dict(f) for f in files]})

    async def attach(self, dataset: Did, files: Sequence[Did]) -> int:
        """Attach files to a dataset; those attached already are skipped. Returns how many
        were attached now."""
        if not files:
            return 0
        path = self._did_path(dataset) + "/dids"
        response = await self._request("POST", path, body={"dids": _dids(files)})
        if response.status_code < 300:
            return len(files)
        if response.status_code != 409 or _error(response).exception_class not in ALREADY_THERE:
            raise _error(response)
        # Some were attached before (a redelivery): attach only the rest.
        present = {Did(c["scope"], c["name"]) for c in await self.list_content(dataset)}
        missing = [f for f in files if f not in present]
        if missing:
            await self._ok("POST", path, body={"dids": _dids(missing)})
        return len(missing)

    async def add_rule(
        self,
        dids: Sequence[Did],
        rse_expression: str,
        *,
        account: str | None = None,
        lifetime_s: int | None = None,
    ) -> list[str]:
        """Add a one-copy rule; an identical existing rule is found and returned instead."""
        owner = account or self.account
        response = await self._request(
            "POST",
            "/rules/",
            body={
                "dids": _dids(dids),
                "copies": 1,
                "rse_expression": rse_expression,
                "account": owner,
                "lifetime": lifetime_s,
                "grouping": "DATASET",
            },
        )
        if response.status_code < 300:
            return [str(r) for r in response.json()]
        error = _error(response)
        if error.exception_class != "DuplicateRule":
            raise error
        found = []
        for did in dids:
            for rule in await self.list_rules(did):
                if rule.get("account") == owner and rule.get("rse_expression") == rse_expression:
                    found.append(str(rule["id"]))
        return found

    async def set_rule_lifetime(self, rule_id: str, lifetime_s: int) -> None:
        await self._ok("PUT", f"/rules/{rule_id}", body={"options": {"lifetime": lifetime_s}})

    async def close(self, did: Did) -> None:
        """Close a dataset: no more files may be attached."""
        await self._ok("PUT", self._did_path(did) + "/status", body={"open": False})
