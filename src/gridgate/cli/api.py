"""A small client of gridgate's public HTTP API, as the ``gridgate`` commands use it.

It speaks only the documented routes (README, ``/openapi.json``): the JSON job list at
``/api/jobs``, the catalogues, the schedules. Every refusal becomes an :class:`ApiError`
carrying the problem+json document, so the commands can show its message and field errors
and exit with a code that says what kind of failure it was (:mod:`gridgate.cli.exits`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from gridgate.cli import exits

Json = dict[str, Any]
USER_AGENT = "gridgate-cli"


@dataclass
class ApiError(Exception):
    """The API refused a request (or could not be reached); ``exit_code`` classes it."""

    message: str
    exit_code: int
    status: int | None = None
    problem: Json = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [self.message]
        for item in self.problem.get("errors") or []:
            where = item.get("field") or item.get("loc") or ""
            lines.append(f"  {where}: {item.get('message') or item.get('msg') or item}")
        return "\n".join(lines)


def exit_code_for_status(status: int) -> int:
    """The CLI's exit code for an HTTP status the API answered with."""
    if status in (401, 403):
        return exits.AUTH
    if status in (404, 410):
        return exits.NOT_FOUND
    if status in (400, 409, 413, 422):
        return exits.REFUSED
    return exits.SERVER


def raise_for(response: httpx.Response) -> None:
    """Raise the :class:`ApiError` of a refused response (a no-op for a success)."""
    if response.is_success or response.status_code in (303, 304):
        return
    problem: Json = {}
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else {}
        except ValueError:
            problem = {}
    title = problem.get("detail") or problem.get("title") or response.reason_phrase
    kind = str(problem.get("type", "")).removeprefix("urn:gridgate:problem:")
    message = f"{response.status_code} {title}" + (f" ({kind})" if kind else "")
    raise ApiError(
        message, exit_code_for_status(response.status_code), response.status_code, problem
    )


class GridgateApi:
    """The API of one gateway, with one bearer token (or none, for public routes)."""

    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = 90.0) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def twin(self) -> GridgateApi:
        """Another client of the same gateway and token with its own connections, for a
        second thread: an httpx client is not meant to be shared between threads."""
        return GridgateApi(self.base_url, self.token, timeout_s=self.timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GridgateApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One request; transport failures and refusals become :class:`ApiError`."""
        try:
            response = self.http.request(method, url, **options)
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach gridgate at {self.base_url}: {exc}", exits.UNREACHABLE
            ) from exc
        raise_for(response)
        return response

    def get_json(self, url: str, **params: Any) -> Json:
        query = {key: value for key, value in params.items() if value is not None}
        body: Json = self.request("GET", url, params=query).json()
        return body

    @contextmanager
    def stream(self, url: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        """A streamed GET (result downloads), redirects followed (signed URLs)."""
        try:
            with self.http.stream("GET", url, headers=headers, follow_redirects=True) as answer:
                if not answer.is_success:
                    answer.read()  # the problem document, to say why
                    raise_for(answer)
                yield answer
        except httpx.TransportError as exc:
            raise ApiError(f"download of {url} failed: {exc}", exits.UNREACHABLE) from exc

    # ------------------------------------------------------------------ DiracX links

    def start_diracx_link(self, vo: str, group: str | None) -> Json:
        body: Json = self.request(
            "POST", "/api/diracx-links", json={"vo": vo, "group": group}
        ).json()
        return body

    def complete_diracx_link(self, vo: str, group: str) -> Json:
        body: Json = self.request("POST", f"/api/diracx-links/{vo}/{group}/complete").json()
        return body

    def diracx_links(self) -> list[Json]:
        found: list[Json] = self.get_json("/api/diracx-links")["links"]
        return found

    def unlink_diracx(self, vo: str, group: str) -> None:
        self.request("DELETE", f"/api/diracx-links/{vo}/{group}")

    # ------------------------------------------------------------------ catalogues

    def workflows(self, keyword: str | None = None) -> list[Json]:
        found: list[Json] = self.get_json("/api/workflows", keyword=keyword)["workflows"]
        return found

    def workflow(self, workflow_id: str, version: str | None = None) -> Json:
        return self.get_json(f"/api/workflows/{workflow_id}", version=version)

    def facilities(self, **filters: Any) -> list[Json]:
        found: list[Json] = self.get_json("/api/facilities", **filters)["facilities"]
        return found

    # ------------------------------------------------------------------ jobs

    def submit(self, fields: Json, idempotency_key: str | None = None) -> str:
        """Create a job from ``fields`` (JSON; workflow parameters under ``parameters``);
        its id. The idempotency key makes a repeat after a lost answer find the same job."""
        key = idempotency_key or uuid.uuid4().hex
        answer = self.request("POST", "/api/jobs", json=fields, headers={"Idempotency-Key": key})
        return answer.headers["location"].rstrip("/").rsplit("/", 1)[-1]

    def jobs(self, phases: tuple[str, ...] = (), limit: int | None = None) -> Json:
        """Every job (all pages) in the phases given, newest first: ``{"jobs", "total"}``."""
        params: list[tuple[str, str]] = [("PHASE", phase) for phase in phases]
        params.append(("limit", str(min(limit or 1000, 1000))))
        page = self.request("GET", "/api/jobs", params=params).json()
        jobs: list[Json] = list(page["jobs"])
        while page.get("next") and (limit is None or len(jobs) < limit):
            page = self.request("GET", page["next"]).json()
            jobs.extend(page["jobs"])
        return {"jobs": jobs[:limit] if limit else jobs, "total": page["total"]}

    def job(self, job_id: str, wait_s: int | None = None) -> Json:
        return self.get_json(f"/api/jobs/{job_id}", WAIT=wait_s)

    def run(self, job_id: str) -> None:
        self.request("POST", f"/api/jobs/{job_id}/phase", data={"PHASE": "RUN"})

    def abort(self, job_id: str) -> None:
        self.request("POST", f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})

    def delete(self, job_id: str) -> None:
        self.request("DELETE", f"/api/jobs/{job_id}")

    def log(self, job_id: str, stream: str = "stdout", task: int = 0) -> str:
        return self.request("GET", f"/api/jobs/{job_id}/{stream}", params={"task": task}).text

    def log_from(self, job_id: str, stream: str, task: int, start: int) -> tuple[bytes, bool]:
        """A task's log from byte ``start`` on, asked for as an HTTP range: ``(bytes,
        True)`` when the gateway served the range (a stored log; nothing when there is
        nothing past ``start``), ``(the whole log, False)`` when it answered in full (a
        running task's live view is never served in ranges)."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        url = f"/api/jobs/{job_id}/{stream}"
        try:
            response = self.http.get(url, params={"task": task}, headers=headers)
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach gridgate at {self.base_url}: {exc}", exits.UNREACHABLE
            ) from exc
        if response.status_code == httpx.codes.REQUESTED_RANGE_NOT_SATISFIABLE:
            return b"", True
        raise_for(response)
        return response.content, response.status_code == httpx.codes.PARTIAL_CONTENT

    def results(self, job_id: str) -> Json:
        return self.get_json(f"/api/jobs/{job_id}/results")

    # ------------------------------------------------------------------ schedules

    def schedules(self, paused: bool | None = None, workflow: str | None = None) -> Json:
        params: Json = {"workflow": workflow, "limit": 200}
        if paused is not None:
            params["paused"] = str(paused).lower()
        page = self.get_json("/api/schedules", **params)
        found: list[Json] = list(page["schedules"])
        while page.get("next"):
            page = self.request("GET", page["next"]).json()
            found.extend(page["schedules"])
        return {"schedules": found, "total": page.get("total", len(found))}

    def schedule(self, schedule_id: str, preview: int | None = None) -> Json:
        return self.get_json(f"/api/schedules/{schedule_id}", preview=preview)

    def create_schedule(self, body: Json) -> Json:
        created: Json = self.request("POST", "/api/schedules", json=body).json()
        return created

    def change_schedule(self, schedule_id: str, changes: Json) -> Json:
        changed: Json = self.request("PATCH", f"/api/schedules/{schedule_id}", json=changes).json()
        return changed

    def delete_schedule(self, schedule_id: str) -> None:
        self.request("DELETE", f"/api/schedules/{schedule_id}")

    def fire_schedule(self, schedule_id: str) -> Json:
        fired: Json = self.request("POST", f"/api/schedules/{schedule_id}/run").json()
        return fired

    def schedule_runs(self, schedule_id: str) -> list[Json]:
        runs: list[Json] = self.get_json(f"/api/schedules/{schedule_id}/runs")["runs"]
        return runs


__all__ = ["ApiError", "GridgateApi", "Json", "exit_code_for_status"]
