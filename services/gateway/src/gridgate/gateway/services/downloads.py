"""Result downloads: short-lived signed URLs, and the bytes streamed by the gateway itself.

A user's bearer token never goes to storage. The gateway either streams a result from its
store (a directory, WebDAV or a Rucio storage element, with gridgate's own storage
credentials) or hands out a URL signed with HMAC-SHA256 over the job id, the result name and
the expiry time, which works without a token until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gridgate.contracts.phases import Phase
from gridgate.datalake import StorageClient, StorageError, StoredFileMissingError
from gridgate.gateway.exceptions import (
    DataLakeUnavailableError,
    ResultNotFoundError,
    ResultRemovedError,
    SignedUrlExpiredError,
    SignedUrlInvalidError,
)
from gridgate.gateway.models.job import Job, ResultRecord
from gridgate.gateway.services.jobs import JobService
from gridgate.iam.identity import Identity


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class UrlSigner:
    """Signs ``(job id, result name, expiry)``; a token is ``<expiry>.<signature>``.

    Parameters
    ----------
    key
        The HMAC key, shared by every gateway replica.
    ttl_s
        How long a signed URL works.
    """

    def __init__(self, key: bytes, ttl_s: int = 600) -> None:
        if len(key) < 16:
            raise ValueError("the signing key must have at least 16 bytes")
        self._key = key
        self.ttl_s = ttl_s

    def __repr__(self) -> str:  # never show the key
        return f"UrlSigner(ttl_s={self.ttl_s})"

    @classmethod
    def random(cls, ttl_s: int = 600) -> UrlSigner:
        return cls(secrets.token_bytes(32), ttl_s)

    def _signature(self, job_id: str, name: str, expires: int) -> str:
        message = f"{job_id}\x00{name}\x00{expires}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def sign(self, job_id: str, name: str, now: datetime) -> tuple[str, datetime]:
        """The token for a result, and when it expires."""
        expires = int(now.timestamp()) + self.ttl_s
        token = f"{expires}.{self._signature(job_id, name, expires)}"
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, job_id: str, name: str, token: str, now: datetime) -> None:
        """Accept an unaltered, unexpired token for this result.

        Raises
        ------
        SignedUrlInvalidError
            If the token is malformed or its signature does not match (one byte changed).
        SignedUrlExpiredError
            If it is genuine but past its expiry.
        """
        expires_text, dot, signature = token.partition(".")
        if not dot or not expires_text.isdigit() or len(expires_text) > 12:
            raise SignedUrlInvalidError("This download URL is not one gridgate signed.")
        expected = self._signature(job_id, name, int(expires_text))
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignedUrlInvalidError("This download URL is not one gridgate signed.")
        if int(expires_text) < now.timestamp():
            raise SignedUrlExpiredError(
                "This download URL has expired; ask the job's results for a new one."
            )


@dataclass
class Download:
    """What to answer a download with: a redirect, a local file, or a stream."""

    record: ResultRecord
    redirect_token: str | None = None
    path: Path | None = None
    chunks: AsyncIterator[bytes] | None = None
    closer: AsyncExitStack | None = None


class DownloadService:
    """Finds a result's bytes for its owner or for the holder of a signed URL."""

    def __init__(
        self,
        jobs: JobService,
        signer: UrlSigner,
        results_dir: Path,
        storage: StorageClient | None,
        *,
        redirect: bool = False,
    ) -> None:
        self.jobs = jobs
        self.signer = signer
        self.results_dir = results_dir
        self.storage = storage
        self.redirect = redirect

    def sign(self, job_id: str, name: str, now: datetime) -> tuple[str, datetime]:
        return self.signer.sign(job_id, name, now)

    async def for_owner(self, identity: Identity, job_id: str, name: str) -> Download:
        job, record = await self.jobs.result_for_download(identity, job_id, name)
        if self.redirect:
            self._check_present(job, record)
            token, _ = self.signer.sign(job_id, record.name, datetime.now(UTC))
            return Download(record=record, redirect_token=token)
        return await self._open(job, record)

    async def for_signed(self, job_id: str, name: str, token: str) -> Download:
        # The signature is checked before anything is looked up: a forged URL learns nothing.
        self.signer.verify(job_id, name, token, datetime.now(UTC))
        job, record = await self.jobs.result_for_download(None, job_id, name)
        return await self._open(job, record)

    @staticmethod
    def _check_present(job: Job, record: ResultRecord) -> None:
        if job.phase == Phase.ARCHIVED:
            where = f"; it is kept in the data lake as {record.did}" if record.did else ""
            raise ResultRemovedError(
                f"Job {job.id} passed its destruction time and its files were removed{where}.",
                did=record.did,
            )

    async def _open(self, job: Job, record: ResultRecord) -> Download:
        self._check_present(job, record)
        missing = ResultNotFoundError(f"The file of result {record.name!r} is no longer stored.")
        if record.location is None:
            root = (self.results_dir / job.id).resolve()
            path = (root / record.name).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                raise missing
            return Download(record=record, path=path)
        if self.storage is None:
            raise DataLakeUnavailableError("This gateway has no storage access configured.")
        stack = AsyncExitStack()
        try:
            chunks = await stack.enter_async_context(self.storage.open(record.location))
        except StoredFileMissingError as exc:
            await stack.aclose()
            raise missing from exc
        except StorageError as exc:
            await stack.aclose()
            raise DataLakeUnavailableError("The results storage did not deliver the file.") from exc
        return Download(record=record, chunks=chunks, closer=stack)
