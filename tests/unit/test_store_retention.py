"""Pure parts of spec.retention in the object store: retain-until dates, lock refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import S3Error

from lucid_common.api import Retention
from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.storage import ObjectLockUnavailableError, ObjectStore, SessionLayout
from lucid_recorder.storage.store import lock_missing_message, no_object_lock, object_retention


def s3_error(code: str, message: str = "") -> S3Error:
    return S3Error(None, code, message, "/b/k", "req", "host", bucket_name="b")


def test_no_retention_means_no_lock_headers() -> None:
    assert object_retention(None, dt.datetime.now(dt.UTC)) is None


@pytest.mark.parametrize(("mode", "expected"), [("Compliance", COMPLIANCE),
                                                ("Governance", GOVERNANCE)])
def test_retain_until_is_the_upload_time_plus_the_duration(mode: str, expected: str) -> None:
    now = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.UTC)
    lock = object_retention(Retention(mode=mode, duration="30d"), now)
    assert lock is not None and lock.mode == expected
    assert lock.retain_until_date == dt.datetime(2027, 1, 6, 10, 0, 0, tzinfo=dt.UTC)


def test_retain_until_rounds_up_never_down() -> None:
    # S3 dates carry whole seconds: rounding down would shorten the retention asked for.
    now = dt.datetime(2026, 12, 7, 10, 0, 0, 999_000, tzinfo=dt.UTC)
    lock = object_retention(Retention(mode="Compliance", duration="1h"), now)
    assert lock is not None
    assert lock.retain_until_date == dt.datetime(2026, 12, 7, 11, 0, 1, tzinfo=dt.UTC)
    assert lock.retain_until_date - now >= dt.timedelta(hours=1)


def test_retain_until_is_utc_whatever_the_clock_zone() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    lock = object_retention(Retention(mode="Governance", duration="2h"),
                            dt.datetime(2026, 12, 7, 11, 0, tzinfo=cet))
    assert lock is not None
    assert lock.retain_until_date == dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("code", "message", "expected"), [
    ("ObjectLockConfigurationNotFoundError", "", True),
    ("NotImplemented", "A header you provided implies functionality that is not implemented",
     True),
    ("InvalidRequest", "Bucket is missing ObjectLockConfiguration", True),
    ("InvalidRequest", "Object is WORM protected and cannot be overwritten", False),
    ("InvalidArgument", "x-amz-object-lock-mode header is not valid", True),
    ("AccessDenied", "Access Denied.", False),
    ("NoSuchBucket", "", False),
])
def test_which_refusals_mean_no_object_lock(code: str, message: str, expected: bool) -> None:
    assert no_object_lock(s3_error(code, message)) is expected


def test_the_message_names_the_bucket_and_the_ways_out() -> None:
    message = lock_missing_message("recordings", "ObjectLockConfigurationNotFoundError")
    assert message.startswith("bucket recordings has no S3 Object Lock "
                              "(ObjectLockConfigurationNotFoundError)")
    assert "spec.retention" in message and "--with-lock" in message


class LocklessStore:
    """A Minio stand-in for a store that refuses object lock on bucket creation."""

    def __init__(self) -> None:
        self.made: list[bool] = []

    def bucket_exists(self, bucket: str) -> bool:
        return bool(self.made)

    def make_bucket(self, bucket: str, object_lock: bool = False) -> None:
        if object_lock:
            raise s3_error("NotImplemented", "object lock is not implemented")
        self.made.append(object_lock)

    def get_object_lock_config(self, bucket: str) -> None:
        raise s3_error("ObjectLockConfigurationNotFoundError")


def _store(client: LocklessStore, retention: Retention | None):
    layout = SessionLayout("recordings", SessionIdentity(namespace="n", name="s", uid="u"))
    return ObjectStore(client, "b", layout, retention=retention)  # type: ignore[arg-type]


def test_a_store_without_lock_gets_a_plain_bucket_only_without_retention(caplog) -> None:
    client = LocklessStore()
    _store(client, None).ensure_bucket(create=True)
    assert client.made == [False]
    assert "cannot create bucket b with object lock" in caplog.text


def test_a_store_without_lock_refuses_a_retained_session() -> None:
    client = LocklessStore()
    with pytest.raises(ObjectLockUnavailableError, match="bucket b has no S3 Object Lock "
                       r"\(the store refused to create it with a lock: NotImplemented\)"):
        _store(client, Retention(mode="Compliance", duration="1d")).ensure_bucket(create=True)
    assert client.made == []
