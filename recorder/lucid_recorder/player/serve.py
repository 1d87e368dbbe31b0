"""`lucid-play serve`: the browser player's local server, on the auditor's workstation.

It serves the static page (player/web/, built from player/ in the repository) and passes
through read-only requests for one session's objects: the chunk listing, the chunks and
the manifest, as stored, still sealed. It never holds the private key and never sees
plaintext: the page imports the key into WebCrypto and decrypts in the browser.

    GET /                       the page (index.html, player.js, player.css)
    GET /api/session            {"namespace", "name", "uid", "source"}
    GET /api/manifest           manifest.json as stored (404 when there is none yet)
    GET /api/chunks             {"chunks": [{"seq": N, "size": BYTES}, ...]}
    GET /api/chunks/<seq>       one sealed chunk (application/vnd.lucid.chunk)

Only GET and HEAD; only this session's prefix; only loopback unless --allow-remote. A
Host check refuses DNS-rebinding pages, and a Content-Security-Policy keeps the page from
reaching any other origin.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Protocol

from lucid_recorder.sealing.manifest import SessionIdentity
from lucid_recorder.storage.errors import StorageError
from lucid_recorder.storage.layout import CHUNK_CONTENT_TYPE, parse_chunk_name
from lucid_recorder.storage.store import ObjectStore

from .errors import PlayerError

STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/player.js": ("player.js", "text/javascript; charset=utf-8"),
    "/player.css": ("player.css", "text/css; charset=utf-8"),
}
CHUNK_PATH = re.compile(r"^/api/chunks/([0-9]{1,20})$", re.ASCII)
# Everything the page loads comes from here; no other origin, no inline script, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Chunks are ciphertext, but nothing of a recording is left in the browser's cache.
    "Cache-Control": "no-store",
}
# An idle keep-alive connection is closed after this many seconds.
CONNECTION_TIMEOUT = 30.0


class ServeError(PlayerError):
    """The server cannot start as asked; the message says what to change."""


# -- where the objects come from -----------------------------------------------------


class SessionObjects(Protocol):
    """One session's stored objects, read-only."""

    session: SessionIdentity

    def describe(self) -> str: ...

    def manifest(self) -> bytes | None: ...

    def chunk_sizes(self) -> list[tuple[int, int]]: ...

    def chunk(self, seq: int) -> bytes | None: ...


@dataclass
class StoreObjects:
    """From S3/MinIO: every call is one request bounded by the client's timeouts."""

    store: ObjectStore

    @property
    def session(self) -> SessionIdentity:
        return self.store.layout.session

    def describe(self) -> str:
        return f"s3://{self.store.bucket}/{self.store.layout.root}"

    def manifest(self) -> bytes | None:
        return self.store.get_manifest_bytes()

    def chunk_sizes(self) -> list[tuple[int, int]]:
        return self.store.chunk_sizes()

    def chunk(self, seq: int) -> bytes | None:
        return self.store.get_chunk(seq)


@dataclass
class DirObjects:
    """A local copy of a session directory: chunks/<seq>.lrec and manifest.json."""

    directory: Path
    session: SessionIdentity

    @property
    def chunks_dir(self) -> Path:
        nested = self.directory / "chunks"
        return nested if nested.is_dir() else self.directory

    def describe(self) -> str:
        return str(self.directory)

    def manifest(self) -> bytes | None:
        path = self.directory / "manifest.json"
        return path.read_bytes() if path.is_file() else None

    def _paths(self) -> dict[int, Path]:
        out = {}
        for path in self.chunks_dir.glob("*.lrec"):
            seq = parse_chunk_name(path.name)  # the exact ASCII spelling only
            if seq is not None:
                out[seq] = path
        return out

    def chunk_sizes(self) -> list[tuple[int, int]]:
        return sorted((seq, path.stat().st_size) for seq, path in self._paths().items())

    def chunk(self, seq: int) -> bytes | None:
        path = self._paths().get(seq)
        return path.read_bytes() if path is not None else None


# -- pure decisions ------------------------------------------------------------------


def check_listen(host: str, allow_remote: bool) -> None:
    """Refuse to listen beyond loopback unless the auditor asked for it explicitly."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ServeError(f"--listen {host}: give an IP address (127.0.0.1, ::1)") from None
    if address.is_loopback:
        return
    if allow_remote:
        return
    where = "every interface" if address.is_unspecified else "a non-loopback address"
    raise ServeError(
        f"refusing to listen on {host} ({where}): anyone who reaches this port could read "
        "the session's (sealed) objects with your storage credentials; use 127.0.0.1, or "
        "pass --allow-remote if you mean it")


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Host headers a loopback server answers to; anything else is a rebinding attempt."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    names.add(f"[{host}]" if ":" in host else host)
    return frozenset({*names, *(f"{name}:{port}" for name in names)})


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, value: object) -> Response:
    return Response(status, "application/json", json.dumps(value).encode() + b"\n")


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class Router:
    """Maps a GET to a response. Storage errors become 502 with the store's message."""

    def __init__(self, objects: SessionObjects, static: Callable[[str], bytes]) -> None:
        self.objects = objects
        self.static = static

    def get(self, path: str) -> Response:
        path = path.split("?", 1)[0]
        try:
            return self._get(path)
        except StorageError as exc:
            return _error(HTTPStatus.BAD_GATEWAY, str(exc))
        except OSError as exc:
            return _error(HTTPStatus.BAD_GATEWAY, f"cannot read the session: {exc}")

    def _get(self, path: str) -> Response:
        if path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            return Response(HTTPStatus.OK, content_type, self.static(name))
        if path == "/api/session":
            s = self.objects.session
            return _json(HTTPStatus.OK, {"namespace": s.namespace, "name": s.name,
                                         "uid": s.uid, "source": self.objects.describe()})
        if path == "/api/manifest":
            data = self.objects.manifest()
            if data is None:
                return _error(HTTPStatus.NOT_FOUND, "no manifest.json (yet)")
            return Response(HTTPStatus.OK, "application/json", data)
        if path == "/api/chunks":
            return _json(HTTPStatus.OK, {"chunks": [
                {"seq": seq, "size": size} for seq, size in self.objects.chunk_sizes()]})
        match = CHUNK_PATH.match(path)
        if match:
            seq = int(match.group(1))
            data = self.objects.chunk(seq)
            if data is None:
                return _error(HTTPStatus.NOT_FOUND, f"chunk {seq} not stored")
            return Response(HTTPStatus.OK, CHUNK_CONTENT_TYPE, data)
        return _error(HTTPStatus.NOT_FOUND, f"no such path: {path}")


def packaged_static(name: str) -> bytes:
    """The built page, shipped as package data of lucid-recorder."""
    try:
        return resources.files("lucid_recorder.player").joinpath("web", name).read_bytes()
    except FileNotFoundError:
        raise PlayerError(f"the player page ({name}) is missing from this installation: "
                          "build it with `npm --prefix player ci && npm --prefix player run "
                          "build`") from None


# -- the HTTP edge -------------------------------------------------------------------


class PlayerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, router: Router, *, check_host: bool,
                 log: Callable[[str], None]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self.router = router
        self.hosts = allowed_hosts(host, self.server_address[1]) if check_host else None
        self.log = log

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: PlayerServer
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT
    server_version = "lucid-play"
    sys_version = ""

    def _send(self, response: Response, *, body: bool = True) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in (*SECURITY_HEADERS.items(), *response.headers):
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(response.body)

    def _refused(self) -> Response | None:
        hosts = self.server.hosts
        if hosts is not None and self.headers.get("Host", "") not in hosts:
            return _error(HTTPStatus.MISDIRECTED_REQUEST,
                          "unexpected Host header: this server answers only to its own "
                          "loopback address")
        return None

    def do_GET(self) -> None:
        self._send(self._refused() or self.server.router.get(self.path))

    def do_HEAD(self) -> None:
        self._send(self._refused() or self.server.router.get(self.path), body=False)

    def _not_allowed(self) -> None:
        self._send(Response(HTTPStatus.METHOD_NOT_ALLOWED, "application/json",
                            b'{"error": "read-only: GET and HEAD only"}\n',
                            (("Allow", "GET, HEAD"),)))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def log_message(self, format: str, *args: object) -> None:
        self.server.log(format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Errors are worth a line; every successful chunk fetch is not.
        if str(code).isdigit() and int(code) >= 400:
            super().log_request(code, size)


def serve(objects: SessionObjects, host: str, port: int, *, allow_remote: bool,
          static: Callable[[str], bytes] = packaged_static,
          log: Callable[[str], None] | None = None) -> PlayerServer:
    """A bound, not yet serving server (call serve_forever, or start_in_thread)."""
    check_listen(host, allow_remote)
    static("index.html")  # fail now, not at the first request, when the page is missing

    def to_stderr(line: str) -> None:
        print(f"lucid-play serve: {line}", file=sys.stderr)

    try:
        address = ipaddress.ip_address(host) if host != "localhost" else None
    except ValueError:
        address = None
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    try:
        return PlayerServer(host, port, Router(objects, static), check_host=loopback,
                            log=log or to_stderr)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def start_in_thread(server: PlayerServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="lucid-play-serve",
                              daemon=True)
    thread.start()
    return thread
