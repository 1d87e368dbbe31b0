import datetime as dt
import json
import stat

import pytest

from lucid_recorder.sealing import (
    Codec,
    Sealer,
    SessionIdentity,
    build_manifest,
    compress,
    fingerprint,
    read_public_key,
)
from lucid_recorder.sealing.cli import ENV_ACCESS_KEY, ENV_SECRET_KEY, main

UID = "0f6a4c1e-2d3b-4a5c-8e9f-001122334455"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def keys(tmp_path):
    assert main(["keygen", "--out-dir", str(tmp_path / "keys")]) == 0
    return tmp_path / "keys"


@pytest.fixture
def session_dir(tmp_path, keys):
    public = read_public_key(keys / "public.pem")
    sealer = Sealer(public, UID)
    root = tmp_path / "session"
    (root / "chunks").mkdir(parents=True)
    infos = []
    for seq in range(3):
        chunk = sealer.seal(compress(b"seg%d" % seq * 100, Codec.ZSTD, 3), seq, seq + 1)
        (root / "chunks" / f"{seq:08d}.lrec").write_bytes(chunk.data)
        infos.append(chunk.info)
    manifest = build_manifest(SessionIdentity(namespace="ns", name="n", uid=UID),
                              fingerprint(public), infos, [sealer.key_record],
                              started_at=T0, now=T0, complete=True)
    (root / "manifest.json").write_bytes(manifest.to_json())
    return root


def test_keygen_files(keys, capsys):
    assert stat.S_IMODE((keys / "private.pem").stat().st_mode) == 0o600
    assert (keys / "public.pem").exists()
    assert main(["keygen", "--out-dir", str(keys)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_verify_ok_and_json(session_dir, keys, capsys):
    args = ["verify", "--from-dir", str(session_dir), "--private-key", str(keys / "private.pem")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"session {UID}: OK; complete; 3/3 chunks authentic" in out
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["chunksAuthentic"] == 3


def test_verify_reports_tampering_with_exit_1(session_dir, keys, capsys):
    (session_dir / "chunks" / "00000001.lrec").unlink()
    code = main(["verify", "--from-dir", str(session_dir), "--private-key",
                 str(keys / "private.pem")])
    assert code == 1
    assert "problem [chunk 1] missing: chunk 1 missing" in capsys.readouterr().out


def test_decrypt_writes_segments(session_dir, keys, tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["decrypt", "--from-dir", str(session_dir), "--private-key",
                 str(keys / "private.pem"), "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.seg")) == [
        "00000000.seg", "00000001.seg", "00000002.seg"]
    assert (out / "00000002.seg").read_bytes() == b"seg2" * 100
    assert json.loads((out / "verify-report.json").read_text())["ok"] is True
    assert main(["decrypt", "--from-dir", str(session_dir), "--private-key",
                 str(keys / "private.pem"), "--out-dir", str(out)]) == 2
    assert "already holds .seg files" in capsys.readouterr().err


def test_clear_one_line_errors(session_dir, keys, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    assert main(["verify", "--from-dir", str(session_dir), "--private-key", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable PEM private key" in err

    monkeypatch.delenv(ENV_ACCESS_KEY, raising=False)
    monkeypatch.delenv(ENV_SECRET_KEY, raising=False)
    assert main(["verify", "--endpoint", "127.0.0.1:1", "--bucket", "b", "--session", "a/b/c",
                 "--private-key", str(keys / "private.pem")]) == 2
    assert f"set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}" in capsys.readouterr().err

    assert main(["verify", "--private-key", str(keys / "private.pem")]) == 2
    assert "--endpoint, --bucket and --session" in capsys.readouterr().err

    (session_dir / "manifest.json").unlink()
    assert main(["verify", "--from-dir", str(session_dir), "--private-key",
                 str(keys / "private.pem")]) == 2
    assert "give the session UID" in capsys.readouterr().err
    assert main(["verify", "--from-dir", str(session_dir), "--session-uid", UID,
                 "--private-key", str(keys / "private.pem")]) == 1
    assert "incomplete: no manifest" in capsys.readouterr().out


def test_wrong_private_key(session_dir, tmp_path, capsys):
    main(["keygen", "--out-dir", str(tmp_path / "other")])
    capsys.readouterr()
    assert main(["verify", "--from-dir", str(session_dir), "--private-key",
                 str(tmp_path / "other" / "private.pem")]) == 1
    assert "wrong-key: the recording is encrypted to recipient" in capsys.readouterr().out


def test_unreachable_store_is_a_clear_error(keys, capsys, monkeypatch):
    monkeypatch.setenv(ENV_ACCESS_KEY, "access-id")
    monkeypatch.setenv(ENV_SECRET_KEY, "s3cr3t-value")
    assert main(["verify", "--endpoint", "127.0.0.1:9", "--no-tls", "--bucket", "bkt",
                 "--session", "ns/name/uid", "--private-key", str(keys / "private.pem")]) == 2
    err = capsys.readouterr().err
    assert "object store unreachable" in err and err.count("\n") == 1
    assert "s3cr3t-value" not in err


def test_usage_errors_return_2(capsys):
    assert main([]) == 2
    assert main(["verify"]) == 2


def test_a_ca_file_that_is_no_pem_is_named_before_connecting(keys, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setenv(ENV_ACCESS_KEY, "a")
    monkeypatch.setenv(ENV_SECRET_KEY, "b")
    source = ["verify", "--endpoint", "127.0.0.1:1", "--bucket", "bkt", "--session", "a/b/c",
              "--private-key", str(keys / "private.pem")]
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    assert main([*source, "--ca-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"lucid-seal verify: {bad} holds no PEM certificate: the CA bundle must be " \
                  "PEM (-----BEGIN CERTIFICATE-----)\n", err
    assert main([*source, "--ca-file", str(tmp_path / "absent.crt")]) == 2
    assert "is not readable at" in capsys.readouterr().err
