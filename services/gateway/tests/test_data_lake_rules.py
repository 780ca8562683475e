"""The gateway's data-lake rules on their own: signed URLs, who reads which scope, splitting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridgate.contracts import InputFile
from gridgate.gateway.exceptions import (
    InvalidInputsError,
    SignedUrlExpiredError,
    SignedUrlInvalidError,
)
from gridgate.gateway.handlers.negotiation import job_request, parse_inputs
from gridgate.gateway.services.datalake import DataLakePolicy, input_groups, parse_dids
from gridgate.gateway.services.downloads import UrlSigner
from gridgate.iam.identity import Identity

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_signed_url_works_until_it_expires_and_only_unaltered() -> None:
    signer = UrlSigner(b"k" * 32, ttl_s=600)
    token, expires = signer.sign("abc123", "task-0000/out.dat", NOW)

    assert expires == NOW + timedelta(seconds=600)
    signer.verify("abc123", "task-0000/out.dat", token, NOW + timedelta(seconds=599))
    with pytest.raises(SignedUrlExpiredError):
        signer.verify("abc123", "task-0000/out.dat", token, NOW + timedelta(seconds=601))
    stamp, signature = token.split(".")
    for position in range(len(token)):
        if token[position] == ".":
            continue
        altered = (
            token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
        )
        with pytest.raises(SignedUrlInvalidError):
            signer.verify("abc123", "task-0000/out.dat", altered, NOW)
    for job_id, name in [("abc124", "task-0000/out.dat"), ("abc123", "task-0000/out.dau")]:
        with pytest.raises(SignedUrlInvalidError):
            signer.verify(job_id, name, token, NOW)
    with pytest.raises(SignedUrlInvalidError):
        UrlSigner(b"x" * 32).verify("abc123", "task-0000/out.dat", token, NOW)
    for garbage in ("", ".", "12.", f"{stamp}", f"-1.{signature}", f"{stamp}x.{signature}"):
        with pytest.raises(SignedUrlInvalidError):
            signer.verify("abc123", "task-0000/out.dat", garbage, NOW)
    assert "k" * 32 not in repr(signer)


def test_users_read_their_own_scope_their_vos_and_public_ones() -> None:
    policy = DataLakePolicy(
        accounts={"sub-alice": "alice"},
        vo_scopes={"cta": ["cta", "cta.mc"]},
        public_scopes=frozenset({"open"}),
    )
    alice = Identity(sub="sub-alice", groups=("cta",), vos=("cta",))
    nobody = Identity(sub="sub-x", groups=("km3net",), vos=("km3net",))

    assert [policy.may_read(alice, s) for s in ("user.alice", "cta", "cta.mc", "open")] == [
        True
    ] * 4
    assert not policy.may_read(alice, "user.bob")
    assert not policy.may_read(alice, "km3net")
    assert policy.may_read(nobody, "km3net")  # a VO not listed has the scope of its name
    assert not policy.may_read(nobody, "user.alice")
    assert policy.placement("sub-alice", "cta") == ("user.alice", "alice")
    assert policy.placement("sub-x", "km3net") == ("km3net", None)
    by_vo = DataLakePolicy(accounts={"sub-alice": "alice"}, output_scope="vo")
    assert by_vo.placement("sub-alice", "cta") == ("cta", "alice")


def test_inputs_split_into_tasks_of_files_per_job() -> None:
    files = [InputFile(scope="s", name=f"d/f{i}", lfn=f"d/f{i}").model_dump() for i in range(5)]
    split = input_groups({"files": files, "files_per_job": 2}, task_count=1)
    assert [[f.name for f in group] for group in split] == [
        ["d/f0", "d/f1"],
        ["d/f2", "d/f3"],
        ["d/f4"],
    ]
    every = input_groups({"files": files[:2], "files_per_job": None}, task_count=3)
    assert [[f.name for f in group] for group in every] == [["d/f0", "d/f1"]] * 3
    assert input_groups(None, task_count=2) == []


def test_inputs_are_read_from_forms_and_json() -> None:
    assert parse_inputs("user.a:x, user.a:y\ncta:z") == ("user.a:x", "user.a:y", "cta:z")
    assert parse_inputs(["user.a:x", " cta:z "]) == ("user.a:x", "cta:z")
    assert parse_inputs("") == ()
    request = job_request({"workflow": "input-manifest", "inputs": "cta:z", "files_per_job": "3"})
    assert (request.inputs, request.files_per_job, request.parameters) == (("cta:z",), 3, {})
    assert [str(d) for d in parse_dids(["cta:z", "cta:z", "user.a:x"])] == ["cta:z", "user.a:x"]
    with pytest.raises(InvalidInputsError) as bad:
        parse_dids(["cta:z", "nocolon", "bad scope:x"])
    assert len(bad.value.extra["errors"]) == 2
