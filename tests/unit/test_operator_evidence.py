"""When and what the operator countersigns (pure: operator/lucid_operator/evidence.py)."""

import datetime as dt

from lucid_common.evidence import new_operator_key, seal_signed_by, sign_seal
from lucid_operator import evidence

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
KEY0 = {"epoch": 0, "publicKey": "A" * 43 + "="}
KEY1 = {"epoch": 1, "publicKey": "B" * 43 + "="}
HEAD = "ab" * 32


def session(phase="Recording", pipeline=None, seal=None, message=None):
    status = {"phase": phase, "pipeline": pipeline or {}}
    if seal is not None or message:
        status["evidence"] = {k: v for k, v in (("seal", seal), ("message", message)) if v}
    return {"metadata": {"namespace": "ns", "name": "rec", "uid": "u-1"}, "status": status}


def sealed(s, at=NOW):
    seal, _ = evidence.next_seal(s, at)
    return sign_seal(seal, new_operator_key()).to_k8s()


def test_a_new_run_key_is_sealed_at_once():
    s = session(pipeline={"signingKey": KEY0, "chainHead": {"chunks": 0}})
    assert evidence.due(s, NOW, 60) == evidence.SEAL
    first = sealed(s)
    assert first["counter"] == 1 and first["signingKeys"] == [KEY0] and not first["final"]
    same = session(pipeline={"signingKey": KEY0, "chainHead": {"chunks": 0}}, seal=first)
    assert evidence.due(same, NOW, 60) is None
    # A replacement pod's run: its key is added to the ones already countersigned.
    moved = session(pipeline={"signingKey": KEY1, "chainHead": {"chunks": 3, "sha256": HEAD}},
                    seal=first)
    assert evidence.due(moved, NOW, 60) == evidence.SEAL
    second, seen = evidence.next_seal(moved, NOW)
    assert [k.epoch for k in second.signing_keys] == [0, 1] and second.counter == 2
    assert seen.conflict is None


def test_growth_is_checkpointed_at_most_every_interval():
    first = sealed(session(pipeline={"signingKey": KEY0, "chainHead": {"chunks": 0}}))
    grown = session(pipeline={"signingKey": KEY0, "chainHead": {"chunks": 5, "sha256": HEAD}},
                    seal=first)
    assert evidence.due(grown, NOW + dt.timedelta(seconds=30), 60) is None
    assert evidence.due(grown, NOW + dt.timedelta(seconds=61), 60) == evidence.SEAL


def test_the_end_is_sealed_once_and_final():
    first = sealed(session(pipeline={"signingKey": KEY0, "chainHead": {"chunks": 2,
                                                                        "sha256": HEAD}}))
    done = session("Completed", {"state": "Finalized", "signingKey": KEY0,
                                 "chainHead": {"chunks": 2, "sha256": HEAD}}, seal=first)
    assert evidence.due(done, NOW, 60) == evidence.SEAL
    final = sealed(done)
    assert final["final"] and final["recorderFinalized"] and final["state"] == "Completed"
    after = session("Completed", done["status"]["pipeline"], seal=final)
    assert evidence.due(after, NOW + dt.timedelta(hours=1), 60) is None
    # ...unless its copy in the bucket is still owed.
    owed = session("Completed", done["status"]["pipeline"], seal=final, message="down")
    assert evidence.due(owed, NOW, 60) == evidence.STORE


def test_a_shrinking_chain_is_a_conflict_and_never_sealed_lower():
    first = sealed(session(pipeline={"signingKey": KEY0,
                                     "chainHead": {"chunks": 9, "sha256": HEAD}}))
    shrunk = session(pipeline={"signingKey": KEY1, "chainHead": {"chunks": 4, "sha256": "cd" * 32}},
                     seal=first)
    seal, seen = evidence.next_seal(shrunk, NOW)
    assert (seal.chunks, seal.chain_head) == (9, HEAD)
    assert "lost its tail" in (seen.conflict or "")


def test_nothing_stored_is_sealed_in_the_status_only():
    failed = session("Failed", {})
    seal, _ = evidence.next_seal(failed, NOW)
    assert seal.final and evidence.seal_stays_in_status(seal)


def test_the_status_copy_verifies():
    key = new_operator_key()
    seal, _ = evidence.next_seal(session(pipeline={"signingKey": KEY0}), NOW)
    signed = sign_seal(seal, key)
    assert seal_signed_by(evidence.current_seal(session(seal=signed.to_k8s())), key.public_key())
