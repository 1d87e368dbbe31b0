import pytest
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from lucid_recorder.storage import (
    BucketMissingError,
    RetriesExhausted,
    RetryPolicy,
    StorageAuthError,
    StorageError,
    StoragePermissionError,
    TransientStorageError,
    retry_call,
    translate,
)


def s3_error(code, bucket="recordings"):
    return S3Error(None, code, f"{code} message", "/recordings/x", "req", "host", bucket, "x")


def test_backoff_grows_exponentially_to_a_cap():
    policy = RetryPolicy(initial_delay=0.5, max_delay=30, multiplier=2)
    assert [policy.ceiling(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.ceiling(10_000) == 30  # no float overflow on long outages


def test_jitter_keeps_half_the_ceiling():
    policy = RetryPolicy(initial_delay=1, max_delay=8)
    assert policy.delay(3, rand=lambda: 0.0) == 2.0
    assert policy.delay(3, rand=lambda: 1.0) == 4.0
    assert policy.delay(3, rand=lambda: 0.5) == 3.0


@pytest.mark.parametrize("kwargs", [
    {"initial_delay": 0}, {"initial_delay": 5, "max_delay": 1}, {"multiplier": 0.5},
    {"max_attempts": 0},
])
def test_policy_validation(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures, error=None):
    error = error or TransientStorageError("down")
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "done"
    return call, calls


def test_retries_transient_errors_with_backoff():
    clock = Clock()
    retries = []
    call, calls = flaky(4)
    result = retry_call(call, RetryPolicy(initial_delay=1, max_delay=4), sleep=clock.sleep,
                        clock=lambda: clock.now, rand=lambda: 1.0,
                        on_retry=lambda n, e, d: retries.append((n, str(e), d)))
    assert result == "done" and len(calls) == 5
    assert clock.sleeps == [1, 2, 4, 4]
    assert retries[0] == (1, "down", 1)


def test_permanent_errors_are_not_retried():
    call, calls = flaky(1, StorageAuthError("bad key"))
    with pytest.raises(StorageAuthError):
        retry_call(call, RetryPolicy(), sleep=pytest.fail)
    assert len(calls) == 1


def test_attempt_limit_and_deadline():
    clock = Clock()
    call, calls = flaky(10)
    with pytest.raises(RetriesExhausted, match="after 3 attempts") as err:
        retry_call(call, RetryPolicy(max_attempts=3), sleep=clock.sleep, clock=lambda: clock.now)
    assert isinstance(err.value.__cause__, TransientStorageError)
    clock = Clock()
    call, calls = flaky(100)
    with pytest.raises(RetriesExhausted, match="deadline"):
        retry_call(call, RetryPolicy(initial_delay=1, max_delay=1), deadline=5.5,
                   sleep=clock.sleep, clock=lambda: clock.now, rand=lambda: 1.0)
    # Attempts at 0..5 s, then one last at the deadline itself, not a sleep past it.
    assert clock.now == 5.5 and len(calls) == 7


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_wrong_credentials_are_an_auth_error(code):
    error = translate(s3_error(code), "uploading x")
    assert isinstance(error, StorageAuthError)
    assert code in str(error) and "credentialsSecretRef" in str(error)


def test_error_classification():
    assert type(translate(s3_error("NoSuchBucket"), "w")) is BucketMissingError
    assert type(translate(s3_error("AccessDenied"), "w")) is StoragePermissionError
    assert type(translate(s3_error("InvalidBucketName"), "w")) is StorageError
    for transient in (s3_error("SlowDown"), s3_error("XMinioServerNotInitialized"),
                      s3_error("XAmzContentChecksumMismatch"), ServerError("boom", 503),
                      InvalidResponseError(502, "text/html", "<html>"),
                      urllib3.exceptions.NewConnectionError(None, "refused"),
                      urllib3.exceptions.ReadTimeoutError(None, "/x", "timed out"),
                      ConnectionResetError("reset")):
        assert isinstance(translate(transient, "w"), TransientStorageError), transient
