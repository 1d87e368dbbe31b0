"""The pure parts of per-session STS credentials: policy, Secret, renewal, STS answers."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from lucid_common import contract
from lucid_operator.sts import (
    EXPIRES_ANNOTATION,
    StsError,
    TemporaryCredentials,
    credentials_secret,
    expires_at,
    parse_response,
    renewal_due,
    secret_name,
    session_policy,
    session_prefix,
)

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
CREDS = TemporaryCredentials("ASIAKEY", "temp-secret", "token-123", NOW + dt.timedelta(hours=1))
SESSION = {"apiVersion": "lucid.dev/v1alpha1", "kind": "RecordingSession",
           "metadata": {"name": "demo", "namespace": "team-a", "uid": "u-1"}}


def test_the_prefix_is_the_recorder_layout() -> None:
    assert session_prefix("recordings", "team-a", "demo", "u-1") == "recordings/team-a/demo/u-1/"
    assert session_prefix("", "team-a", "demo", "u-1") == "team-a/demo/u-1/"


def test_the_policy_allows_writing_below_the_prefix_only() -> None:
    policy = session_policy("rec", "recordings/team-a/demo/u-1/", retention=False)
    write, region = policy["Statement"]
    assert write == {"Sid": "WriteOwnSessionOnly", "Effect": "Allow",
                     "Action": ["s3:PutObject"],
                     "Resource": ["arn:aws:s3:::rec/recordings/team-a/demo/u-1/*"]}
    assert region["Action"] == ["s3:GetBucketLocation"]
    assert region["Resource"] == ["arn:aws:s3:::rec"]
    every_action = {a for s in policy["Statement"] for a in s["Action"]}
    assert not any(a.startswith(("s3:Get", "s3:Delete", "s3:List")) and
                   a != "s3:GetBucketLocation" for a in every_action)
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


def test_retention_adds_only_put_object_retention() -> None:
    (write, _) = session_policy("rec", "p/ns/n/u/", retention=True)["Statement"]
    assert write["Action"] == ["s3:PutObject", "s3:PutObjectRetention"]


@pytest.mark.parametrize("prefix", ["", "p/ns/n/u", "p/*/", "p/ns?/n/u/"])
def test_a_prefix_that_could_widen_the_grant_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="must end with / and hold no wildcard"):
        session_policy("rec", prefix, retention=False)


def test_the_secret_holds_the_three_files_and_is_owned_by_the_session() -> None:
    secret = credentials_secret(SESSION, CREDS)
    assert secret["metadata"]["name"] == secret_name("demo") == "demo-storage-session"
    assert secret["metadata"]["namespace"] == "team-a"
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == \
        ("RecordingSession", "demo", "u-1", True)
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {contract.STORAGE_ACCESS_KEY_FILE: "ASIAKEY",
                       contract.STORAGE_SECRET_KEY_FILE: "temp-secret",
                       contract.STORAGE_SESSION_TOKEN_FILE: "token-123"}
    assert secret["metadata"]["annotations"][EXPIRES_ANNOTATION] == "2026-12-07T11:00:00Z"
    assert expires_at(secret) == NOW + dt.timedelta(hours=1)
    assert "temp-secret" not in repr(CREDS) and "token-123" not in repr(CREDS)


@pytest.mark.parametrize(("left", "duration", "due"), [
    (dt.timedelta(minutes=50), 3600, False),
    (dt.timedelta(minutes=20), 3600, True),   # a third of an hour left
    (dt.timedelta(minutes=6), 900, False),     # five minutes is the least lead
    (dt.timedelta(minutes=5), 900, True),
    (-dt.timedelta(minutes=1), 3600, True),    # already expired
])
def test_renewal_is_due_with_a_third_of_the_lifetime_left(left, duration, due) -> None:
    assert renewal_due(NOW + left, NOW, duration) is due


def test_unknown_expiry_means_renew() -> None:
    assert renewal_due(None, NOW, 3600)
    assert expires_at(None) is None
    assert expires_at({"metadata": {"annotations": {EXPIRES_ANNOTATION: "soon"}}}) is None


OK_BODY = b"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>
<SecretAccessKey>s3cr3t</SecretAccessKey><SessionToken>tok</SessionToken>
<Expiration>2026-12-07T11:00:00Z</Expiration></Credentials></AssumeRoleResult>
</AssumeRoleResponse>"""


def test_an_sts_answer_is_parsed() -> None:
    creds = parse_response(200, OK_BODY)
    assert (creds.access_key, creds.secret_key, creds.session_token) == ("ASIA1", "s3cr3t", "tok")
    assert creds.expiration == NOW + dt.timedelta(hours=1)


@pytest.mark.parametrize(("status", "body", "message", "unsupported"), [
    (403, b"<ErrorResponse xmlns='https://sts.amazonaws.com/doc/2011-06-15/'><Error>"
          b"<Code>AccessDenied</Code><Message>Access denied</Message></Error></ErrorResponse>",
     "STS AssumeRole failed (AccessDenied: Access denied)", False),
    (503, b"", "STS AssumeRole failed (HTTP 503)", True),
    (501, b"<Error><Code>NotImplemented</Code><Message>no</Message></Error>",
     "STS AssumeRole failed (NotImplemented: no)", True),
    (200, b"<html>hello</html>", "STS AssumeRole answered without credentials", False),
    (400, b"not xml <", "STS AssumeRole failed (HTTP 400)", False),
])
def test_sts_refusals_become_one_line(status, body, message, unsupported) -> None:
    with pytest.raises(StsError) as caught:
        parse_response(status, body)
    assert str(caught.value) == message
    assert caught.value.unsupported is unsupported
