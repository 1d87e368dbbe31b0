import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing import KeyFormatError, UnwrapError, keygen, load_public_key
from lucid_recorder.sealing.keys import (
    fingerprint,
    load_private_key,
    new_data_key,
    read_private_key,
    read_public_key,
    unwrap_data_key,
    wrap_data_key,
)

UID = "0f6a4c1e-2d3b-4a5c-8e9f-001122334455"


def test_keygen_writes_private_0600_and_public_pem(tmp_path):
    files = keygen(tmp_path / "keys")
    assert stat.S_IMODE(files.private.stat().st_mode) == 0o600
    assert files.public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    private = read_private_key(files.private)
    public = read_public_key(files.public)
    assert fingerprint(private.public_key()) == fingerprint(public) == files.fingerprint


def test_keygen_refuses_to_overwrite(tmp_path):
    keygen(tmp_path)
    with pytest.raises(FileExistsError):
        keygen(tmp_path)


def test_keygen_with_passphrase(tmp_path):
    files = keygen(tmp_path, b"correct horse")
    assert b"ENCRYPTED" in files.private.read_bytes()
    read_private_key(files.private, b"correct horse")
    with pytest.raises(KeyFormatError, match="passphrase"):
        read_private_key(files.private)


def test_wrap_round_trip_and_binding():
    private = X25519PrivateKey.generate()
    data_key = new_data_key()
    record = wrap_data_key(data_key, private.public_key(), UID, 3)
    assert record.epoch == 3
    assert unwrap_data_key(record, private, UID) == data_key
    # Bound to the session: the same record does not open for another UID.
    with pytest.raises(UnwrapError, match="copied from another session"):
        unwrap_data_key(record, private, "another-uid")


def test_each_wrap_is_fresh():
    public = X25519PrivateKey.generate().public_key()
    key = new_data_key()
    a, b = (wrap_data_key(key, public, UID, 0) for _ in range(2))
    assert a.ephemeral_public_key != b.ephemeral_public_key
    assert a.wrapped_key != b.wrapped_key


def test_wrong_private_key_names_fingerprints_not_keys():
    right, wrong = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    data_key = new_data_key()
    record = wrap_data_key(data_key, right.public_key(), UID, 0)
    with pytest.raises(UnwrapError) as err:
        unwrap_data_key(record, wrong, UID)
    message = str(err.value)
    assert fingerprint(right.public_key()).hex()[:16] in message
    assert fingerprint(wrong.public_key()).hex()[:16] in message
    assert data_key.hex() not in message


def _pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("pem, match", [
    (b"", "not a PEM public key"),
    (b"hello world", "not a PEM public key"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
])
def test_malformed_public_key(pem, match):
    with pytest.raises(KeyFormatError, match=match):
        load_public_key(pem, source="Secret lucid/recipient key publicKey")


def test_public_key_of_another_type():
    with pytest.raises(KeyFormatError, match="expected X25519"):
        load_public_key(_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(KeyFormatError, match="Ed25519 key, expected X25519"):
        load_public_key(_pem(ed25519.Ed25519PrivateKey.generate()))


def test_private_key_in_the_public_slot_is_refused_without_echoing_it():
    private = X25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with pytest.raises(KeyFormatError, match="PRIVATE key") as err:
        load_public_key(pem)
    assert pem.decode().splitlines()[1] not in str(err.value)


def test_private_key_file_errors():
    with pytest.raises(KeyFormatError, match="not a readable PEM private key"):
        load_private_key(b"garbage")
    with pytest.raises(KeyFormatError, match="expected X25519"):
        load_private_key(ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


def test_recipient_key_from_the_mounted_secret(tmp_path):
    from lucid_common.api.spec import Encryption, PublicKeySecretRef
    from lucid_recorder.storage.from_spec import recipient_key

    encryption = Encryption(recipient_public_key_secret_ref=PublicKeySecretRef(name="auditor"))
    with pytest.raises(KeyFormatError, match="Secret auditor key publicKey is not readable"):
        recipient_key(encryption, tmp_path)
    (tmp_path / "publicKey").write_text("-----BEGIN PUBLIC KEY-----\nnope\n")
    with pytest.raises(KeyFormatError, match="Secret auditor key publicKey is not a PEM"):
        recipient_key(encryption, tmp_path)
    files = keygen(tmp_path / "k")
    (tmp_path / "publicKey").write_bytes(files.public.read_bytes())
    assert fingerprint(recipient_key(encryption, tmp_path)) == files.fingerprint
