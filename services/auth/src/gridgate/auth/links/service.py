"""diracx-user-link: a user links a DiracX account once; the auth service keeps it alive.

The user starts DiracX's device flow through us and approves it at their VO's IdP; we keep
the refresh token DiracX then gives, sealed, and mint access tokens for the user's jobs from
it. DiracX rotates refresh tokens and revokes every token of a user when a revoked one is
presented again, so each refresh happens under the row's lock (two replicas never refresh
with the same token) and its result is committed before anyone may use it. A link cannot
outlive the first refresh token's end (DiracX 0.7.0 keeps that end on rotation); the gateway
records that end as the job's credential end and warns the owner before it comes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.auth.links.keys import USER_LINK_ROUTE, LinkKey
from gridgate.auth.links.migrate import upgrade_schema
from gridgate.auth.links.sealing import TokenBox
from gridgate.auth.links.store import LinkRow, LinkStore
from gridgate.core.errors import ProblemError, TransientError
from gridgate.diracx.oauth import DiracXGrantRefusedError, DiracXOAuth

audit = structlog.get_logger("gridgate.audit")


class DiracXLinkMissingError(ProblemError):
    """The user has no usable link to DiracX for this VO and group (never linked, revoked, or
    run out): link the DiracX account again (``POST /api/diracx-links``)."""

    slug, title, status = "diracx-link-missing", "No DiracX link", 403


class DiracXLinkPendingError(ProblemError):
    """No device login of this user for this VO and group is under way: start one first."""

    slug, title, status = "diracx-link-not-started", "No DiracX login under way", 409


class DiracXLoginRefusedError(ProblemError):
    """DiracX refused the device login: the user is not registered in the VO and group asked,
    or the login expired. The detail is DiracX's reason."""

    slug, title, status = "diracx-login-refused", "DiracX refused the login", 403


class DiracXLinkUnavailableError(ProblemError):
    """DiracX or the link store did not answer; retry shortly."""

    slug, title, status = "diracx-link-unavailable", "DiracX link unavailable", 503
    retry_after_s = 10


@dataclass(frozen=True)
class LinkView:
    """A link as its owner sees it: no token, ever."""

    vo: str
    group: str
    status: str  # pending | linked | revoked | expired
    diracx_user: str | None
    expires_at: float | None
    reason: str | None
    user_code: str | None = None
    verification_uri: str | None = None
    device_expires_at: float | None = None


@dataclass(frozen=True)
class LinkedToken:
    access_token: str
    expires_at: float
    link_expires_at: float


class DiracXLinkService:
    """Start, complete, show, revoke links; access tokens of a link for the workers."""

    def __init__(
        self,
        engine: AsyncEngine,
        box: TokenBox,
        oauth: DiracXOAuth,
        *,
        min_left_s: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.box = box
        self.oauth = oauth
        self.min_left_s = min_left_s
        self.clock = clock
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()

    async def _db(self) -> AsyncEngine:
        """The engine, its schema brought up to date once (on first use: the auth app may be
        mounted in another app, whose start-up does not run ours)."""
        if not self._schema_ready:
            async with self._schema_lock:
                if not self._schema_ready:
                    await upgrade_schema(self.engine)
                    self._schema_ready = True
        return self.engine

    async def start(self, key: LinkKey) -> LinkView:
        """Start DiracX's device flow: the user opens ``verification_uri`` and approves."""
        try:
            login = await self.oauth.start_device_login(key.vo, key.group)
        except DiracXGrantRefusedError as exc:
            raise DiracXLoginRefusedError(str(exc)) from exc
        except TransientError as exc:
            raise DiracXLinkUnavailableError(str(exc)) from exc
        now = self.clock()
        async with (await self._db()).begin() as db:
            store = LinkStore(db)
            current = await store.get(key, for_update=True)
            values = {
                "sealed_device_code": self.box.seal(login.device_code),
                "user_code": login.user_code,
                "verification_uri": login.verification_uri_complete,
                "device_expires_at": now + login.expires_in,
                "updated_at": now,
            }
            # a new login leaves a working link in place until it completes; over a revoked
            # or run-out one (still marked linked when nothing refreshed it since its end),
            # the link is pending again
            working = (
                current is not None
                and current.status == "linked"
                and (current.refresh_expires_at or 0.0) > now
            )
            if not working:
                values["status"] = "pending"
            await store.upsert(key, values)
            row = await store.get(key)
        audit.info("diracx link started", sub=key.sub, vo=key.vo, group=key.group)
        assert row is not None
        return self._view(row)

    async def complete(self, key: LinkKey) -> LinkView:
        """Ask DiracX once whether the user approved; store the link if they did."""
        async with (await self._db()).connect() as db:
            row = await LinkStore(db).get(key)
        if row is None or row.sealed_device_code is None:
            raise DiracXLinkPendingError(
                f"No DiracX login for {key.vo}/{key.group} is under way; start one with "
                f"POST {USER_LINK_ROUTE}."
            )
        try:
            grant = await self.oauth.poll_device_login(self.box.open(row.sealed_device_code))
        except DiracXGrantRefusedError as exc:
            async with (await self._db()).begin() as db:
                await LinkStore(db).update(key, _no_login(self.clock()))
            audit.warning("diracx link refused", sub=key.sub, vo=key.vo, group=key.group)
            raise DiracXLoginRefusedError(str(exc)) from exc
        except TransientError as exc:
            raise DiracXLinkUnavailableError(str(exc)) from exc
        if grant is None:
            return self._view(row)
        now = self.clock()
        async with (await self._db()).begin() as db:
            store = LinkStore(db)
            previous = await store.get(key, for_update=True)
            await store.update(
                key,
                _no_login(now)
                | {
                    "status": "linked",
                    "reason": None,
                    "diracx_user": grant.username,
                    "sealed_refresh": self.box.seal(grant.refresh_token),
                    "refresh_expires_at": grant.refresh_expires_at,
                    "sealed_access": self.box.seal(grant.access_token),
                    "access_expires_at": grant.access_expires_at,
                },
            )
            linked = await store.get(key)
        if previous is not None and previous.sealed_refresh is not None:
            await self._revoke_quietly(previous.sealed_refresh)
        audit.info(
            "diracx linked",
            sub=key.sub,
            vo=key.vo,
            group=key.group,
            diracx_user=grant.username,
            expires_at=grant.refresh_expires_at,
        )
        assert linked is not None
        return self._view(linked)

    async def links(self, sub: str) -> list[LinkView]:
        async with (await self._db()).connect() as db:
            rows = await LinkStore(db).list_for(sub)
        return [self._view(row) for row in rows]

    async def revoke(self, key: LinkKey) -> None:
        """The user unlinks: DiracX revokes the refresh token; we forget it either way."""
        async with (await self._db()).begin() as db:
            store = LinkStore(db)
            row = await store.get(key, for_update=True)
            if row is None:
                return
            await store.update(key, _revoked(self.clock(), "unlinked by its owner"))
        if row.sealed_refresh is not None:
            await self._revoke_quietly(row.sealed_refresh)
        audit.info("diracx link revoked", sub=key.sub, vo=key.vo, group=key.group)

    async def check(self, key: LinkKey) -> float:
        """How long the link still lasts, in seconds; the problem if there is none."""
        async with (await self._db()).connect() as db:
            row = await LinkStore(db).get(key)
        return self._usable(key, row) - self.clock()

    async def access_token(self, key: LinkKey, job_id: str | None = None) -> LinkedToken:
        """An access token of the link: the stored one while it lasts, else a refresh."""
        async with (await self._db()).connect() as db:
            row = await LinkStore(db).get(key)
        link_end = self._usable(key, row)
        assert row is not None
        if _fresh(row, self.clock(), self.min_left_s):
            assert row.sealed_access is not None and row.access_expires_at is not None
            return LinkedToken(self.box.open(row.sealed_access), row.access_expires_at, link_end)
        return await self._refresh(key, job_id)

    async def _refresh(self, key: LinkKey, job_id: str | None) -> LinkedToken:
        # The row stays locked across DiracX's answer: a second replica waits, then finds the
        # new access token instead of presenting the rotated-out refresh token.
        async with (await self._db()).begin() as db:
            store = LinkStore(db)
            row = await store.get(key, for_update=True)
            link_end = self._usable(key, row)
            assert row is not None and row.sealed_refresh is not None
            if _fresh(row, self.clock(), self.min_left_s):
                assert row.sealed_access is not None and row.access_expires_at is not None
                token = self.box.open(row.sealed_access)
                return LinkedToken(token, row.access_expires_at, link_end)
            try:
                grant = await self.oauth.refresh(self.box.open(row.sealed_refresh))
            except DiracXGrantRefusedError as exc:
                now = self.clock()
                ended = link_end <= now + 1
                reason = "ran out" if ended else "refused by DiracX (revoked)"
                status = "expired" if ended else "revoked"
                await store.update(key, _revoked(now, reason) | {"status": status})
                failure: ProblemError = DiracXLinkMissingError(
                    f"Your DiracX link for {key.vo}/{key.group} {reason}; link it again "
                    f"(POST {USER_LINK_ROUTE}).",
                    vo=key.vo,
                    group=key.group,
                    link_status=status,
                )
                failure.__cause__ = exc
            except TransientError as exc:
                raise DiracXLinkUnavailableError(str(exc)) from exc
            else:
                await store.update(
                    key,
                    {
                        "sealed_refresh": self.box.seal(grant.refresh_token),
                        "refresh_expires_at": grant.refresh_expires_at,
                        "sealed_access": self.box.seal(grant.access_token),
                        "access_expires_at": grant.access_expires_at,
                        "updated_at": self.clock(),
                    },
                )
                audit.info(
                    "diracx link refreshed",
                    sub=key.sub,
                    vo=key.vo,
                    group=key.group,
                    job_id=job_id,
                    link_expires_at=grant.refresh_expires_at,
                )
                return LinkedToken(
                    grant.access_token, grant.access_expires_at, grant.refresh_expires_at
                )
        # committed: the link is marked revoked or expired before the refusal is reported
        audit.warning("diracx link lost", sub=key.sub, vo=key.vo, group=key.group, job_id=job_id)
        raise failure

    def _usable(self, key: LinkKey, row: LinkRow | None) -> float:
        """The link's end, if it is linked and has not run out; the problem otherwise."""
        now = self.clock()
        if (
            row is None
            or row.status in ("pending", "revoked", "expired")
            or (row.refresh_expires_at is None or row.sealed_refresh is None)
        ):
            state = "never linked" if row is None else row.status
            raise DiracXLinkMissingError(
                f"Your DiracX account is not linked for {key.vo}/{key.group} ({state}); link it "
                f"with POST {USER_LINK_ROUTE} and approve the login at DiracX.",
                vo=key.vo,
                group=key.group,
                link_status=state,
            )
        if row.refresh_expires_at <= now:
            raise DiracXLinkMissingError(
                f"Your DiracX link for {key.vo}/{key.group} ran out; link it again with "
                f"POST {USER_LINK_ROUTE}.",
                vo=key.vo,
                group=key.group,
                link_status="expired",
            )
        return row.refresh_expires_at

    async def _revoke_quietly(self, sealed_refresh: str) -> None:
        try:
            await self.oauth.revoke(self.box.open(sealed_refresh))
        except (TransientError, DiracXGrantRefusedError) as exc:
            # the token is forgotten here anyway; DiracX lets it run out
            audit.warning("diracx revoke failed", error=type(exc).__name__)

    def _view(self, row: LinkRow) -> LinkView:
        status = row.status
        if status == "linked" and (row.refresh_expires_at or 0) <= self.clock():
            status = "expired"
        pending = row.sealed_device_code is not None
        return LinkView(
            vo=row.key.vo,
            group=row.key.group,
            status=status,
            diracx_user=row.diracx_user,
            expires_at=row.refresh_expires_at,
            reason=row.reason,
            user_code=row.user_code if pending else None,
            verification_uri=row.verification_uri if pending else None,
            device_expires_at=row.device_expires_at if pending else None,
        )


def _fresh(row: LinkRow, now: float, min_left_s: float) -> bool:
    return (
        row.sealed_access is not None
        and row.access_expires_at is not None
        and row.access_expires_at - now > min_left_s
    )


def _no_login(now: float) -> dict[str, object]:
    return {
        "sealed_device_code": None,
        "user_code": None,
        "verification_uri": None,
        "device_expires_at": None,
        "updated_at": now,
    }


def _revoked(now: float, reason: str) -> dict[str, object]:
    return {
        "status": "revoked",
        "reason": reason,
        "sealed_refresh": None,
        "sealed_access": None,
        "access_expires_at": None,
        "updated_at": now,
    }
