"""The NoScreenUpdates rule (pipeline/screen.py) on the update sequences xrdp sends.

The sequences are the shapes measured against the local xrdp + Xvnc desktop
(1024x768): xrdp paints its own screen at once in full-width strips of 4 rows,
bottom up; with the right password the session's first frame follows, in strips
again, covering the whole desktop a second time; with a wrong password only
xrdp's log window follows (rows of text, 400 pixels wide, at x = 10), and then
nothing at all.
"""

from __future__ import annotations

from lucid_common import contract
from lucid_recorder.pipeline.screen import ScreenWatch

W, H = 1024, 768
S = 10**9
TIMEOUT = 60 * S


def full_paint(watch: ScreenWatch) -> None:
    for y in range(H - 4, -1, -4):
        watch.rect(0, y, W, 4)


def log_window(watch: ScreenWatch) -> None:
    for row in range(30):
        watch.rect(10, 170 + row * 10, 400, 10)
    watch.rect(10, 140, 60, 23)


def connected(timeout: int = TIMEOUT, **kwargs: bool) -> ScreenWatch:
    watch = ScreenWatch(timeout)
    watch.connected(0, W, H, **kwargs)
    return watch


def test_a_refused_login_leaves_only_xrdps_own_screen_and_turns_missing():
    watch = connected()
    full_paint(watch)
    log_window(watch)
    assert watch.poll(59 * S) == contract.SCREEN_WAITING
    assert watch.seconds_left(59 * S) == 1.0
    assert watch.poll(60 * S) == contract.SCREEN_MISSING
    assert watch.updates_since_connect == H // 4 + 31 and watch.full_paints == 1
    assert watch.seconds_left(61 * S) is None


def test_no_update_at_all_turns_missing_too():
    watch = connected()
    assert watch.poll(60 * S) == contract.SCREEN_MISSING
    assert watch.updates_since_connect == 0


def test_the_sessions_first_frame_after_xrdps_screen_shows_it():
    watch = connected()
    full_paint(watch)
    assert watch.poll(1 * S) == contract.SCREEN_WAITING
    full_paint(watch)
    assert watch.poll(1 * S) == contract.SCREEN_SHOWN


def test_an_idle_desktop_without_a_clock_stays_shown_forever():
    watch = connected()
    full_paint(watch)
    full_paint(watch)
    # Nothing changes on the screen for an hour: no update needed.
    assert watch.poll(3600 * S) == contract.SCREEN_SHOWN


def test_a_frame_painted_in_tiles_counts_like_strips():
    watch = connected()
    full_paint(watch)
    for y in range(0, H, 64):
        for x in range(0, W, 64):
            watch.rect(x, y, 64, 64)
    assert watch.poll(1 * S) == contract.SCREEN_SHOWN


def test_overlapping_partial_updates_never_make_a_full_paint():
    watch = connected()
    full_paint(watch)
    for _ in range(100):  # the log window redrawn over and over
        log_window(watch)
    watch.rect(0, 0, W, H - 1)  # all but the last row
    assert watch.poll(60 * S) == contract.SCREEN_MISSING


def test_rects_outside_the_desktop_are_clipped():
    watch = connected()
    watch.rect(-100, -100, W + 200, H + 200)
    assert watch.full_paints == 1
    watch.rect(W, H, 50, 50)  # entirely outside: nothing
    assert watch.poll(1 * S) == contract.SCREEN_WAITING


def test_a_late_session_frame_clears_missing():
    watch = connected()
    full_paint(watch)
    assert watch.poll(61 * S) == contract.SCREEN_MISSING
    full_paint(watch)
    assert watch.poll(62 * S) == contract.SCREEN_SHOWN


def test_nla_or_a_confirmed_logon_proves_the_session():
    assert connected(credentials_checked=True).poll(3600 * S) == contract.SCREEN_SHOWN
    watch = connected()
    watch.logon_confirmed()
    assert watch.poll(3600 * S) == contract.SCREEN_SHOWN


def test_each_connection_starts_the_rule_over():
    watch = connected()
    full_paint(watch)
    full_paint(watch)
    watch.disconnected()
    assert watch.poll(3600 * S) == contract.SCREEN_WAITING  # not connected: no timeout
    watch.connected(100 * S, W, H)
    full_paint(watch)
    assert watch.poll(159 * S) == contract.SCREEN_WAITING
    assert watch.poll(160 * S) == contract.SCREEN_MISSING


def test_a_resize_drops_a_paint_in_progress_but_keeps_finished_ones():
    watch = connected()
    full_paint(watch)
    watch.rect(0, 0, W, H // 2)
    watch.resize(800, 600)
    assert watch.full_paints == 1
    watch.rect(0, 0, 800, 600)
    assert watch.poll(1 * S) == contract.SCREEN_SHOWN


def test_timeout_zero_turns_the_check_off():
    watch = connected(timeout=0)
    assert watch.poll(3600 * S) == contract.SCREEN_UNCHECKED
    watch.disconnected()
    assert watch.poll(3600 * S) == contract.SCREEN_UNCHECKED
