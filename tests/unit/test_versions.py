"""storage.versions: what a versioned bucket's history says about rewritten objects."""

import datetime as dt

from lucid_recorder.storage.versions import Version, rewrites

T = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def v(name: str, vid: str, etag: str, minute: int, *, marker: bool = False,
      latest: bool = False) -> Version:
    return Version(name, vid, etag, marker, latest, T + dt.timedelta(minutes=minute))


def test_a_retried_upload_of_the_same_bytes_is_no_rewrite():
    assert rewrites([v("chunks/00000001.lrec", "a", '"e1"', 0),
                     v("chunks/00000001.lrec", "b", "e1", 1, latest=True)]) == []


def test_versions_of_one_second_are_ordered_as_listed_newest_first():
    (line,) = rewrites([v("chunks/00000003.lrec", "late", "e2", 1, latest=True),
                        v("chunks/00000003.lrec", "orig", "e1", 1)])
    assert "the first is version orig" in line


def test_different_contents_name_the_first_version_still_stored():
    assert rewrites([v("chunks/00000003.lrec", "late", "e2", 5, latest=True),
                     v("chunks/00000003.lrec", "orig", "e1", 1)]) == [
        "chunks/00000003.lrec was rewritten: 2 versions with different contents; the first "
        "is version orig, stored 2026-12-07T12:01:00Z"]


def test_a_delete_marker_over_a_kept_version_is_named():
    assert rewrites([v("chunks/00000004.lrec", "orig", "e1", 1),
                     v("chunks/00000004.lrec", "dm", "", 2, marker=True, latest=True)]) == [
        "chunks/00000004.lrec is hidden by a delete marker; 1 earlier version(s) are still "
        "stored, the first as version orig, stored 2026-12-07T12:01:00Z"]


def test_the_manifest_may_change_but_not_vanish():
    history = [v("manifest.json", "m1", "e1", 1), v("manifest.json", "m2", "e2", 2, latest=True)]
    assert rewrites(history, frozenset({"manifest.json"})) == []
    hidden = [*history[:1], v("manifest.json", "m2", "e2", 2),
              v("manifest.json", "dm", "", 3, marker=True, latest=True)]
    (line,) = rewrites(hidden, frozenset({"manifest.json"}))
    assert line.startswith("manifest.json is hidden by a delete marker; 2 earlier")
