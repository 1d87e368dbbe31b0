import logging

import pytest

from lucid_common.logs import PlannedRetryFilter, configure_logging


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_a_planned_retry_is_info_not_an_error() -> None:
    record = _record(logging.ERROR, "Handler 'finalize' failed temporarily: waiting for "
                                    "recorder pod rec-recorder-0 to flush (2s so far)")
    assert PlannedRetryFilter().filter(record)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")


@pytest.mark.parametrize("message", [
    "Handler 'start' failed temporarily but will exceed 5 retries: no Secret",
    "Handler 'start' failed temporarily but will time out after 60 seconds: no Secret",
    "Handler 'start' failed with an exception. Will retry.",
])
def test_giving_up_and_real_failures_stay_errors(message: str) -> None:
    record = _record(logging.ERROR, message)
    assert PlannedRetryFilter().filter(record)
    assert record.levelno == logging.ERROR


def test_the_filter_reaches_kopfs_event_poster_and_is_installed_once() -> None:
    # On the logger, not a handler: kopf's Event poster is a handler of kopf.objects
    # and must see the lowered level too.
    root, kopf_objects = logging.getLogger(), logging.getLogger("kopf.objects")
    saved = (root.handlers[:], root.level, kopf_objects.filters[:])
    try:
        configure_logging("text", "INFO")
        configure_logging("text", "INFO")
        assert sum(isinstance(f, PlannedRetryFilter) for f in kopf_objects.filters) == 1
    finally:
        root.handlers[:], kopf_objects.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])
