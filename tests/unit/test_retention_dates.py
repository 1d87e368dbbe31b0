"""The retain-until date the recorder (objects) and the operator (seals) both put."""

import datetime as dt

from lucid_common.api.spec import Retention
from lucid_operator.seal_store import seal_retention
from lucid_recorder.storage.store import object_retention

WRITTEN = dt.datetime(2026, 12, 7, 10, 0, 0, 250_000, tzinfo=dt.UTC)


def test_retain_until_rounds_up_to_the_second_in_utc():
    retention = Retention(mode="Compliance", duration="1d")
    assert retention.retain_until(WRITTEN) == dt.datetime(2026, 12, 8, 10, 0, 1, tzinfo=dt.UTC)
    exact = WRITTEN.replace(microsecond=0).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert Retention(mode="Governance", duration="2h").retain_until(exact) == \
        dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)


def test_seals_are_retained_exactly_like_the_objects_they_vouch_for():
    for mode, s3_mode in (("Compliance", "COMPLIANCE"), ("Governance", "GOVERNANCE")):
        retention = Retention(mode=mode, duration="90d")
        seal, chunk = seal_retention(retention, WRITTEN), object_retention(retention, WRITTEN)
        assert seal is not None and chunk is not None
        assert (seal.mode, seal.retain_until_date) == (chunk.mode, chunk.retain_until_date)
        assert seal.mode == s3_mode
    assert seal_retention(None, WRITTEN) is None and object_retention(None, WRITTEN) is None
