"""Where a session's objects live in the bucket: shared by the recorder, which writes
them, and the operator, which scopes the recorder's credentials to exactly that place."""

import re


def session_root(key_prefix: str, namespace: str, name: str, uid: str) -> str:
    """`<keyPrefix>/<namespace>/<name>/<uid>/`, without a leading slash; every object of
    the session lies below it."""
    parts = [p for p in (key_prefix.strip("/"), namespace, name, uid) if p]
    return "/".join(parts) + "/"


CHUNKS_DIR = "chunks/"
MANIFEST_NAME = "manifest.json"
# No reader (recorder, verify, the operator's resume point) takes a larger manifest.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# How much of a chunk object a reader takes for its header: the recorder's largest header
# (fixed part plus the longest UID, namespace and name) fits, which a unit test checks.
CHUNK_HEAD_BYTES = 1024
# ASCII digits only (\d also matches other scripts' digits), and only the one spelling
# chunk_name() writes: a name with extra leading zeros would alias another chunk.
_CHUNK_NAME = re.compile(r"^([0-9]{8,20})\.lrec$", re.ASCII)


def chunk_name(seq: int) -> str:
    """Eight digits keep names in listing order up to 10^8 chunks; beyond that the names
    grow longer and readers sort by the parsed number, never by the name."""
    return f"{seq:08d}.lrec"


def parse_chunk_name(name: str) -> int | None:
    """The sequence number of `<seq:08d>.lrec`, in exactly the form chunk_name() writes."""
    match = _CHUNK_NAME.match(name)
    if match is None:
        return None
    seq = int(match.group(1))
    return seq if chunk_name(seq) == match.group(1) + ".lrec" and seq < 2**64 else None
