"""The operator-recorder contract: when a session asks its recording to end."""

from lucid_common.contract import stop_intended


def _session(state: str = "Recording", deleting: bool = False, stop_reason: str = "") -> dict:
    metadata = {"name": "s", "deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting \
        else {"name": "s"}
    status = {"stopReason": stop_reason} if stop_reason else {}
    return {"metadata": metadata, "spec": {"state": state}, "status": status}


def test_only_the_spec_the_operator_or_deletion_end_a_recording():
    assert not stop_intended(_session())
    assert stop_intended(_session(state="Stopped"))
    assert stop_intended(_session(deleting=True))
    assert stop_intended(_session(stop_reason="MaxDurationReached"))
    assert not stop_intended({"metadata": {}, "spec": {}})  # defaults: Recording


def test_an_ended_session_has_its_recorder_finalize():
    # The operator failed the session and gave its pod the grace period: no pod follows.
    failed = {"metadata": {"name": "s"}, "spec": {"state": "Recording"},
              "status": {"phase": "Failed"}}
    assert stop_intended(failed)
    assert not stop_intended({**failed, "status": {"phase": "Pending"}})
