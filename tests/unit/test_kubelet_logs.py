"""The local kubelet's answer to /containerLogs: which run, which lines, which timestamps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lucid_devstack.kubelet_logs import (
    ContainerView,
    LogIndex,
    LogOptions,
    LogRequestError,
    choose_run,
    format_stamp,
    lines_of,
    read_range,
    render,
    run_bounds,
)


def view(state: str, runs: int, last: bool, reason: str = "") -> ContainerView:
    return ContainerView(name="main", pod="p", state=state, reason=reason,
                         run_offsets=tuple(range(0, 10 * runs, 10)), last_terminated=last)


@pytest.mark.parametrize(("container", "previous", "expected"), [
    (view("running", 1, False), False, 0),
    (view("running", 2, True), False, 1),         # restarted once: the current run
    (view("running", 2, True), True, 0),          # ... and the one before it
    (view("waiting", 2, True, "CrashLoopBackOff"), False, 1),  # between restarts: the last
    (view("waiting", 2, True, "CrashLoopBackOff"), True, 1),   # that is also lastState
    (view("terminated", 1, False), False, 0),     # ran once and ended for good
    (view("terminated", 3, True), True, 1),
])
def test_the_run_is_chosen_as_the_kubelet_does(container: ContainerView, previous: bool,
                                              expected: int):
    assert choose_run(container, previous) == expected


@pytest.mark.parametrize(("container", "previous", "message"), [
    (view("running", 1, False), True,
     'previous terminated container "main" in pod "p" not found'),
    (view("waiting", 0, False, "ContainerCreating"), False,
     'container "main" in pod "p" is waiting to start: ContainerCreating'),
    (view("waiting", 0, False, "CreateContainerConfigError"), False,
     'container "main" in pod "p" is waiting to start: CreateContainerConfigError'),
    (view("terminated", 0, False), False, 'container "main" in pod "p" is terminated'),
])
def test_no_such_run_is_said_in_the_kubelets_words(container: ContainerView, previous: bool,
                                                   message: str):
    with pytest.raises(LogRequestError) as error:
        choose_run(container, previous)
    assert str(error.value) == message and error.value.status == 400


def test_run_bounds_end_where_the_next_run_begins():
    container = view("running", 3, True)
    assert run_bounds(container, 0) == (0, 10)
    assert run_bounds(container, 2) == (20, None)


def test_options_from_the_apiservers_query():
    options = LogOptions.from_query({"follow": ["true"], "previous": ["false"],
                                     "timestamps": ["1"], "tailLines": ["5"],
                                     "limitBytes": ["100"], "sinceSeconds": ["60"],
                                     "stream": ["All"]}, now_ns=100 * 10**9)
    assert options == LogOptions(follow=True, previous=False, timestamps=True, tail_lines=5,
                                 limit_bytes=100, since_ns=40 * 10**9)
    since = LogOptions.from_query({"sinceTime": ["2026-01-02T03:04:05Z"]})
    assert since.since_ns == 1767323045 * 10**9
    assert LogOptions.from_query({}) == LogOptions()


@pytest.mark.parametrize(("query", "status", "message"), [
    ({"tailLines": ["x"]}, 400, "tailLines='x' is not an integer"),
    ({"tailLines": ["-1"]}, 422, "tailLines must be at least 0"),
    ({"limitBytes": ["0"]}, 422, "limitBytes must be at least 1"),
    ({"sinceSeconds": ["5"], "sinceTime": ["2026-01-01T00:00:00Z"]}, 422, "at most one of"),
    ({"sinceTime": ["yesterday"]}, 400, "is not an RFC 3339 time"),
    ({"follow": ["maybe"]}, 400, "follow='maybe' is not a boolean"),
    ({"stream": ["Stderr"]}, 400, "cannot return stream 'Stderr' alone"),
])
def test_bad_queries_are_refused_saying_why(query: dict[str, list[str]], status: int,
                                            message: str):
    with pytest.raises(LogRequestError, match=message) as error:
        LogOptions.from_query(query)
    assert error.value.status == status


def test_lines_keep_their_offsets_and_a_partial_last_line():
    assert list(lines_of(b"a\nbb\nc", 100)) == [(100, b"a\n"), (102, b"bb\n"), (105, b"c")]
    assert list(lines_of(b"", 0)) == []


def test_render_applies_since_then_tail_then_timestamps():
    lines = [(0, b"one\n"), (4, b"two\n"), (8, b"three\n")]
    stamps = [1 * 10**9, 2 * 10**9, 3 * 10**9 + 5]
    assert render(lines, stamps, LogOptions()) == b"one\ntwo\nthree\n"
    assert render(lines, stamps, LogOptions(tail_lines=2)) == b"two\nthree\n"
    assert render(lines, stamps, LogOptions(tail_lines=0)) == b""
    assert render(lines, stamps, LogOptions(since_ns=2 * 10**9, tail_lines=5)) == \
        b"two\nthree\n"
    assert render(lines, stamps, LogOptions(timestamps=True, tail_lines=1)) == \
        b"1970-01-01T00:00:03.000000005Z three\n"


def test_stamps_have_nine_fraction_digits_in_utc():
    assert format_stamp(1767323045 * 10**9 + 120) == "2026-01-02T03:04:05.000000120Z"


def test_index_stamps_bytes_when_they_first_appear(tmp_path: Path):
    log = tmp_path / "main.log"
    log.write_bytes(b"old line\n")
    os.utime(log, ns=(5 * 10**9, 5 * 10**9))
    index = LogIndex()
    assert index.observe(log) == 9
    assert index.stamp(log, 0) == 5 * 10**9  # there before the index: the file's mtime
    with log.open("ab") as out:
        out.write(b"new line\n")
    assert index.observe(log) == 18
    assert index.stamp(log, 9) > 5 * 10**9
    assert index.stamp(log, 3) == 5 * 10**9
    assert read_range(log, 9, None) == b"new line\n"
    assert read_range(log, 0, 3) == b"old"
    assert read_range(tmp_path / "missing.log", 0, None) == b""
    index.keep_only(set())
    assert index.observe(tmp_path / "missing.log") == 0
