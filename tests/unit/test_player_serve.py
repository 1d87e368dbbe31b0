"""`lucid-play serve`: what it listens on, what it answers, and that it only passes sealed
bytes through (a real server on a free loopback port, over a session directory)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_recorder.player import cli
from lucid_recorder.player.serve import (
    CSP,
    DirObjects,
    PlayerServer,
    ServeError,
    check_listen,
    serve,
    start_in_thread,
)
from lucid_recorder.sealing.manifest import Manifest

REPO = Path(__file__).resolve().parents[2]
SESSION = REPO / "player" / "test" / "vectors" / "sessions" / "good"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_is_allowed(host):
    check_listen(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1"])
def test_anything_else_needs_allow_remote(host):
    with pytest.raises(ServeError, match="--allow-remote"):
        check_listen(host, allow_remote=False)
    check_listen(host, allow_remote=True)


def test_a_host_name_is_refused():
    with pytest.raises(ServeError, match="give an IP address"):
        check_listen("example.org", allow_remote=True)


def test_cli_refuses_0000_without_the_flag(capsys, tmp_path):
    status = cli.main(["serve", "--from-dir", str(SESSION), "--listen", "0.0.0.0",
                       "--port", "0"])
    err = capsys.readouterr().err
    assert status == 2
    assert "refusing to listen on 0.0.0.0 (every interface)" in err
    assert "--allow-remote" in err


def test_cli_needs_a_source(capsys):
    assert cli.main(["serve", "--port", "0"]) == 2
    assert "give --endpoint, --bucket and --session (or --from-dir)" in capsys.readouterr().err


def test_cli_needs_a_uid_without_manifest(capsys, tmp_path):
    shutil.copytree(SESSION / "chunks", tmp_path / "chunks")
    assert cli.main(["serve", "--from-dir", str(tmp_path), "--port", "0"]) == 2
    assert "has no manifest.json: give --session-uid" in capsys.readouterr().err


def test_cli_needs_storage_credentials(capsys, monkeypatch):
    monkeypatch.delenv("LUCID_S3_ACCESS_KEY", raising=False)
    assert cli.main(["serve", "--endpoint", "127.0.0.1:1", "--bucket", "b", "--session",
                     "ns/name", "--port", "0"]) == 2
    assert "LUCID_S3_ACCESS_KEY" in capsys.readouterr().err


@pytest.fixture
def server() -> Iterator[PlayerServer]:
    identity = Manifest.from_json((SESSION / "manifest.json").read_bytes()).session
    running = serve(DirObjects(SESSION, identity), "127.0.0.1", 0, allow_remote=False,
                    log=lambda line: None)
    start_in_thread(running)
    yield running
    running.shutdown()
    running.server_close()


def _request(server: PlayerServer, path: str, method: str = "GET",
             host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        headers = {"Host": host} if host is not None else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serves_the_page_with_a_strict_policy(server):
    status, headers, body = _request(server, "/")
    assert status == 200
    assert b'<script type="module" src="player.js">' in body
    assert headers["Content-Security-Policy"] == CSP
    assert "connect-src 'self'" in CSP and "default-src 'none'" in CSP
    assert headers["Cache-Control"] == "no-store"
    for name in ("/player.js", "/player.css"):
        status, _, body = _request(server, name)
        assert status == 200 and body


def test_passes_the_sealed_objects_through_unchanged(server):
    _, _, body = _request(server, "/api/session")
    assert json.loads(body)["uid"] == "7d3f1c2e-0a5b-4c6d-9e8f-101112131415"
    _, _, body = _request(server, "/api/chunks")
    listed = json.loads(body)["chunks"]
    files = sorted((SESSION / "chunks").glob("*.lrec"))
    assert listed == [{"seq": int(p.stem), "size": p.stat().st_size} for p in files]
    status, headers, body = _request(server, "/api/chunks/1")
    assert status == 200 and headers["Content-Type"] == "application/vnd.lucid.chunk"
    assert body == (SESSION / "chunks" / "00000001.lrec").read_bytes()
    assert body[:4] == b"LREC"  # still sealed: the server has no key
    _, _, body = _request(server, "/api/manifest")
    assert body == (SESSION / "manifest.json").read_bytes()


def test_unknown_paths_and_missing_chunks_are_404(server):
    for path in ("/api/chunks/9", "/api/chunks/../manifest.json", "/../../etc/passwd",
                 "/api/chunks/-1", "/api", "/favicon.ico"):
        status, _, body = _request(server, path)
        assert status == 404, path
        assert "error" in json.loads(body)


def test_read_only(server):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = _request(server, "/api/chunks/0", method)
        assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_refuses_other_host_headers(server):
    port = server.server_address[1]
    status, _, body = _request(server, "/api/chunks/0", host=f"attacker.example:{port}")
    assert status == 421
    assert "unexpected Host" in json.loads(body)["error"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert _request(server, "/api/chunks/0", host=host)[0] == 200


def test_no_manifest_is_404(tmp_path):
    shutil.copytree(SESSION / "chunks", tmp_path / "chunks")
    identity = Manifest.from_json((SESSION / "manifest.json").read_bytes()).session
    running = serve(DirObjects(tmp_path, identity), "127.0.0.1", 0, allow_remote=False,
                    log=lambda line: None)
    start_in_thread(running)
    try:
        status, _, body = _request(running, "/api/manifest")
        assert status == 404 and b"no manifest" in body
    finally:
        running.shutdown()
        running.server_close()


def test_the_committed_page_is_the_built_one():
    """recorder/lucid_recorder/player/web/ is built from player/src (node player/build.mjs)."""
    node_modules = REPO / "player" / "node_modules"
    assert node_modules.is_dir(), "player/node_modules missing: run devstack/bootstrap.sh"
    result = subprocess.run(["node", str(REPO / "player" / "build.mjs"), "--check"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
