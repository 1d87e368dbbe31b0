"""What a versioned bucket still remembers of a session: earlier versions of its objects.

Under retention (S3 Object Lock, which turns versioning on) a bucket writer cannot destroy
a locked version, only add a newer one or a delete marker over it. Verify reads the latest
versions; this finds the objects whose history shows such a rewrite, so the report can say
that the originals are still there and under which version id. Pure: listing in, findings
out; a repeated upload of the same bytes (a retried put) is no rewrite.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Version:
    name: str  # relative to the session's root
    version_id: str
    etag: str
    delete_marker: bool
    latest: bool
    modified: dt.datetime | None


def rewrites(versions: list[Version], mutable: frozenset[str] = frozenset()) -> list[str]:
    """One line per object whose versions differ, or whose latest is a delete marker.

    `mutable` names objects rewritten by design (the manifest, once per interval): only a
    delete marker over them is reported."""
    by_name: dict[str, list[Version]] = defaultdict(list)
    for version in versions:
        by_name[version.name].append(version)
    found = []
    for name in sorted(by_name):
        # S3 lists an object's versions newest first; times are whole seconds, so within
        # one second the listing's order decides.
        history = sorted(reversed(by_name[name]), key=lambda v: (v.modified is None, v.modified))
        kept = [v for v in history if not v.delete_marker]
        if not kept:
            continue
        first = kept[0]
        when = f", stored {first.modified:%Y-%m-%dT%H:%M:%SZ}" if first.modified else ""
        latest = next((v for v in history if v.latest), history[-1])
        if latest.delete_marker:
            found.append(f"{name} is hidden by a delete marker; {len(kept)} earlier "
                         f"version(s) are still stored, the first as version "
                         f"{first.version_id}{when}")
        elif name not in mutable and len({v.etag.strip('"') for v in kept}) > 1:
            found.append(f"{name} was rewritten: {len(kept)} versions with different "
                         f"contents; the first is version {first.version_id}{when}")
    return found
