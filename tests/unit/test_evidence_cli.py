"""`lucid-seal verify` on a local copy: --session, --operator-key, --anchor, --report, names."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.evidence import new_operator_key, public_pem, seal_json
from lucid_recorder.sealing.cli import main
from tests.unit.test_evidence_verify import SESSION, operator_seal, record


@pytest.fixture
def copy(tmp_path):
    recipient = X25519PrivateKey.generate()
    operator = new_operator_key()
    rec = record(recipient, epochs=(0, 1))
    root = tmp_path / "session"
    (root / "chunks").mkdir(parents=True)
    (root / "seals").mkdir()
    for seq, data in rec.chunks.items():
        (root / "chunks" / f"{seq:08d}.lrec").write_bytes(data)
    (root / "manifest.json").write_bytes(rec.manifest.to_json())
    seal = operator_seal(operator, rec)
    (root / "seals" / "00000002.json").write_bytes(seal_json(seal))
    key = tmp_path / "private.pem"
    key.write_bytes(recipient.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    op = tmp_path / "operator.pem"
    op.write_bytes(public_pem(operator.public_key()))
    return root, key, op, seal


def run(root, key, *extra):
    return main(["verify", "--from-dir", str(root), "--private-key", str(key), *extra])


def test_report_and_anchor_forms(copy, tmp_path, capsys):
    root, key, op, seal = copy
    whole = {"kind": "RecordingSession", "status": {"evidence": {"seal": seal.to_k8s()}}}
    for i, form in enumerate((seal.to_k8s(), {"seal": seal.to_k8s()}, whole)):
        anchor = tmp_path / f"anchor-{i}.json"
        anchor.write_text(json.dumps(form))
        report = tmp_path / f"report-{i}.json"
        ident = f"{SESSION.namespace}/{SESSION.name}/{SESSION.uid}"
        assert run(root, key, "--session", ident, "--operator-key", str(op), "--anchor",
                   str(anchor), "--report", str(report)) == 0, capsys.readouterr()
        audit = json.loads(report.read_text())
        assert audit["verdict"] == "OK, countersigned by the operator"
        assert audit["retention"] == {"until": None, "note": "a local copy has no retention"}
    out = capsys.readouterr().out
    assert f"session:    {SESSION.namespace}/{SESSION.name}/{SESSION.uid}" in out
    assert "epoch 1: run key" in out and "countersigned by the operator" in out


def test_without_the_operator_key_the_verdict_says_what_it_cannot_rule_out(copy, capsys):
    root, key, _, _ = copy
    assert run(root, key) == 0  # the recorder's own signatures hold
    out = capsys.readouterr().out
    assert ("operator:   not checked (no --operator-key): anyone who can write the bucket and "
            "knows the recipient public key could have made or rewritten this recording; pass "
            "--operator-key to rule that out") in out


def test_session_names_what_the_copy_must_belong_to(copy, capsys):
    root, key, _, _ = copy
    assert run(root, key, "--session", f"team-b/db/{SESSION.uid}") == 1
    assert "foreign-session: chunk 0 is chunk 0 of session team-a/db/" in capsys.readouterr().err


def test_stray_names_and_an_oversize_manifest(copy, capsys):
    root, key, op, _ = copy
    (root / "chunks" / "00000001000000000.lrec").write_bytes(b"x")
    (root / "chunks" / "0000000\u0661.lrec").write_bytes(b"x")
    assert run(root, key, "--operator-key", str(op)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stray-object" in err
    (root / "manifest.json").write_bytes(b" " * (17 * 1024 * 1024))
    assert run(root, key, "--operator-key", str(op), "--session",
               f"{SESSION.namespace}/{SESSION.name}/{SESSION.uid}") == 1
    err = capsys.readouterr().err
    assert "manifest-invalid: manifest" in err and "not read" in err, err


def test_anchor_needs_the_operator_key_and_bad_keys_are_one_line(copy, tmp_path, capsys):
    root, key, _, seal = copy
    anchor = tmp_path / "a.json"
    anchor.write_bytes(seal_json(seal))
    assert run(root, key, "--anchor", str(anchor)) == 2
    assert "--anchor needs --operator-key" in capsys.readouterr().err
    assert run(root, key, "--operator-key", str(key)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PRIVATE key" in err
