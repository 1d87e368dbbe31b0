"""S3 credentials read from a mounted Secret volume, and read again when it changes.

The kubelet keeps a Secret volume current: it writes each new version into a fresh
directory and swaps the `..data` symlink to it in one rename (its AtomicWriter), so a
reader sees either the old files or the new ones, never a mix. The provider notices the
swap on every request (one readlink) and re-reads the files; after the store rejected
the credentials it is asked to re-read them at once (`reload`), which also covers a
volume that is not kept by a kubelet (no `..data`).

The same path serves temporary credentials (STS) in a Secret that someone renews: a
`sessionToken` file next to the keys is sent with them.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from minio.credentials import Credentials
from minio.credentials.providers import Provider

from lucid_common import contract
from lucid_recorder.storage.errors import StorageAuthError

DATA_LINK = "..data"
log = logging.getLogger("lucid.recorder.storage")


class MountedCredentials(Provider):
    """minio's credential provider for a directory holding accessKey, secretKey (sessionToken)."""

    def __init__(self, directory: Path, source: str) -> None:
        self.directory = Path(directory)
        self.source = source  # names the Secret in messages, e.g. "Secret minio-creds"
        self._lock = threading.Lock()
        self._version: object = None
        self._credentials: Credentials | None = None
        self.reloads = 0

    def retrieve(self) -> Credentials:
        with self._lock:
            version = self._current_version()
            if (self._credentials is None or version != self._version
                    or self._credentials.is_expired()):
                self._load(version)
            assert self._credentials is not None
            return self._credentials

    def reload(self) -> bool:
        """Read the files again now. True when they hold other credentials than before."""
        with self._lock:
            before = self._credentials
            self._load(self._current_version())
            return self._credentials != before

    def _current_version(self) -> object:
        try:
            return os.readlink(self.directory / DATA_LINK)
        except OSError:
            pass
        # Not a kubelet-managed volume: the files' identity and times stand in.
        stamps = []
        for name in (contract.STORAGE_ACCESS_KEY_FILE, contract.STORAGE_SECRET_KEY_FILE,
                     contract.STORAGE_SESSION_TOKEN_FILE):
            try:
                info = (self.directory / name).stat()
            except OSError:
                stamps.append(None)
                continue
            stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def _read(self, name: str, required: bool = True) -> str | None:
        path = self.directory / name
        try:
            return path.read_text()
        except FileNotFoundError:
            if not required:
                return None
            raise StorageAuthError(f"{self.source} has no {name} at {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageAuthError(f"{self.source}: cannot read {path} ({exc})") from exc

    def _load(self, version: object) -> None:
        access = self._read(contract.STORAGE_ACCESS_KEY_FILE)
        secret = self._read(contract.STORAGE_SECRET_KEY_FILE)
        token = self._read(contract.STORAGE_SESSION_TOKEN_FILE, required=False)
        if not access or not secret:
            raise StorageAuthError(f"{self.source}: the access key or secret key is empty")
        fresh = Credentials(access_key=access, secret_key=secret, session_token=token or None)
        if self._credentials is not None and fresh != self._credentials:
            self.reloads += 1
            log.info("%s holds new storage credentials; using them", self.source)
        self._credentials = fresh
        self._version = version
