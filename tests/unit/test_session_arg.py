"""--session NAMESPACE/NAME[/UID], as lucid-seal and lucid-play serve both read it."""

import pytest

from lucid_recorder.storage import store
from lucid_recorder.storage.store import session_arg_parts, stored_session


@pytest.mark.parametrize("value", ["team-a", "team-a/", "a/b/c/d", "a//b", "/"])
def test_malformed_session_arguments_name_the_accepted_forms(value: str):
    with pytest.raises(ValueError, match="--session must be NAMESPACE/NAME or NAMESPACE/NAME/UID"):
        session_arg_parts(value)


def test_a_uid_given_is_used_without_listing(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store, "session_uids", lambda *a: pytest.fail("listed the store"))
    identity = stored_session(None, "b", "p", session_arg_parts("/ns/db/u-1/"), "ns/db/u-1")
    assert (identity.namespace, identity.name, identity.uid) == ("ns", "db", "u-1")


@pytest.mark.parametrize(("stored", "message"), [
    ([], "--session ns/db needs a UID; sessions stored: none"),
    (["u-1", "u-2"], "--session ns/db needs a UID; sessions stored: u-1, u-2")])
def test_without_a_uid_only_one_stored_session_is_taken(monkeypatch: pytest.MonkeyPatch,
                                                        stored: list[str], message: str):
    monkeypatch.setattr(store, "session_uids", lambda *a: stored)
    with pytest.raises(ValueError) as raised:
        stored_session(None, "b", "p", ["ns", "db"], "ns/db")
    assert str(raised.value) == message
    monkeypatch.setattr(store, "session_uids", lambda *a: ["u-9"])
    assert stored_session(None, "b", "p", ["ns", "db"], "ns/db").uid == "u-9"
