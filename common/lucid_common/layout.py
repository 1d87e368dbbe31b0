"""Where a session's objects live in the bucket: shared by the recorder, which writes
them, and the operator, which scopes the recorder's credentials to exactly that place."""


def session_root(key_prefix: str, namespace: str, name: str, uid: str) -> str:
    """`<keyPrefix>/<namespace>/<name>/<uid>/`, without a leading slash; every object of
    the session lies below it."""
    parts = [p for p in (key_prefix.strip("/"), namespace, name, uid) if p]
    return "/".join(parts) + "/"
