import hashlib
import os
import struct

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing import (
    GENESIS,
    ChunkHeader,
    Codec,
    Compressed,
    DecompressionError,
    Sealer,
    compress,
)
from lucid_recorder.sealing.compression import compress_chunk, decompress
from lucid_recorder.sealing.container import (
    FIXED_HEADER_BYTES,
    FIXED_HEADER_BYTES_V1,
    nonce,
    open_sealed,
)
from lucid_recorder.sealing.errors import AuthenticationError, ChunkFormatError
from lucid_recorder.sealing.keys import unwrap_data_key

UID = "0f6a4c1e-2d3b-4a5c-8e9f-001122334455"


@pytest.fixture
def recipient():
    return X25519PrivateKey.generate()


def _open(sealed, private, uid=UID):
    header = ChunkHeader.decode(sealed)
    key = unwrap_data_key(header.key, private, uid)
    payload = open_sealed(sealed, key, header)
    return header, decompress(payload, header.codec, header.plaintext_len)


@pytest.mark.parametrize("codec", [Codec.ZSTD, Codec.NONE])
def test_round_trip_and_header(recipient, codec):
    sealer = Sealer(recipient.public_key(), UID, epoch=2)
    plaintext = b"frame " * 5000
    first = sealer.seal(compress(plaintext, codec, 3), 1_000, 2_000)
    second = sealer.seal(compress(b"next", codec, 3), 2_500, 3_000, dropped_before=True)
    header, out = _open(first.data, recipient)
    assert out == plaintext
    assert (header.seq, header.epoch, header.codec, header.session_uid) == (0, 2, codec, UID)
    assert (header.start_ns, header.end_ns, header.plaintext_len) == (1_000, 2_000, 5 * 6000)
    assert header.prev_sha256 == GENESIS
    assert not header.dropped_before
    header2, out2 = _open(second.data, recipient)
    assert out2 == b"next"
    assert header2.prev_sha256 == hashlib.sha256(first.data).digest()
    assert header2.dropped_before
    assert second.info.sha256 == hashlib.sha256(second.data).hexdigest()
    assert sealer.sealed_size(len(compress(b"next", codec, 3).data)) == len(second.data)


def test_zstd_compresses_and_level_matters(recipient):
    data = b"".join(b"line %d of an xterm\n" % (i % 50) for i in range(20000))
    fast, small = compress(data, Codec.ZSTD, 1), compress(data, Codec.ZSTD, 19)
    assert len(small.data) <= len(fast.data) < len(data) // 10
    with pytest.raises(ValueError, match="level"):
        compress(data, Codec.ZSTD, 0)
    assert Codec.from_name("zstd") is Codec.ZSTD and Codec.from_name("none") is Codec.NONE


def test_a_wider_window_reaches_back_past_the_levels_own(recipient):
    # A 1 MiB random block repeated 5 MiB later: level 3's 2 MiB window cannot see the
    # repeat; a 2^24 window, with or without long-distance matching, can.
    block = os.urandom(1 << 20)
    data = block + os.urandom(5 << 20) + block
    plain = compress(data, Codec.ZSTD, 3)
    for long_distance in (False, True):
        wide = compress(data, Codec.ZSTD, 3, window_log=24, long_distance=long_distance)
        assert len(wide.data) < len(plain.data) - (1 << 19)
        # An ordinary frame that the bounded reader (and any zstd reader) decodes.
        assert decompress(wide.data, Codec.ZSTD, len(data)) == data
        assert zstandard.ZstdDecompressor().decompress(wide.data) == data
        assert zstandard.get_frame_parameters(wide.data).content_size == len(data)
    with pytest.raises(ValueError, match="window_log"):
        compress(data, Codec.ZSTD, 3, window_log=28)


def test_compress_chunk_uses_a_window_over_the_chunk_and_long_distance_matching():
    # The repeat 5 MiB back that level 9's own 4 MiB window misses: the recorder finds it.
    block = os.urandom(1 << 20)
    data = block + os.urandom(5 << 20) + block
    chunk = compress_chunk(data, Codec.ZSTD, 9)
    assert len(chunk.data) < len(compress(data, Codec.ZSTD, 9).data) - (1 << 19)
    # zstd shrinks the 2^25 window it was given to the chunk's own size.
    assert zstandard.get_frame_parameters(chunk.data).window_size <= 1 << 23
    assert decompress(chunk.data, Codec.ZSTD, len(data)) == data
    assert compress_chunk(data, Codec.NONE, 9).data == data
    with pytest.raises(ValueError, match="level"):
        compress_chunk(data, Codec.ZSTD, 23)


def test_nonces_unique_across_chunks_and_epochs(recipient):
    seen = set()
    prev = GENESIS
    next_seq = 0
    for epoch in range(3):
        sealer = Sealer(recipient.public_key(), UID, epoch=epoch, next_seq=next_seq,
                        prev_sha256=prev)
        for _ in range(400):
            chunk = sealer.seal(compress(os.urandom(16), Codec.NONE), 0, 0)
            header = ChunkHeader.decode(chunk.data)
            seen.add((header.key.wrapped_key, nonce(header.epoch, header.seq)))
        next_seq, prev = sealer.next_seq, sealer.prev_sha256
    nonces = {n for _, n in seen}
    assert len(seen) == len(nonces) == 1200
    # And every epoch has its own data key.
    assert len({k for k, _ in seen}) == 3


def test_restarted_sealer_has_new_key_and_continues_chain(recipient):
    a = Sealer(recipient.public_key(), UID, epoch=0)
    last = a.seal(compress(b"x", Codec.NONE), 0, 1)
    b = Sealer(recipient.public_key(), UID, epoch=1, next_seq=a.next_seq,
               prev_sha256=a.prev_sha256)
    first = b.seal(compress(b"y", Codec.NONE), 5, 6)
    ka = unwrap_data_key(ChunkHeader.decode(last.data).key, recipient, UID)
    kb = unwrap_data_key(ChunkHeader.decode(first.data).key, recipient, UID)
    assert ka != kb
    assert ChunkHeader.decode(first.data).prev_sha256 == hashlib.sha256(last.data).digest()
    with pytest.raises(ValueError, match="chain"):
        Sealer(recipient.public_key(), UID, epoch=1, next_seq=5)


def test_every_header_byte_is_authenticated(recipient):
    sealed = Sealer(recipient.public_key(), UID).seal(compress(b"p" * 100, Codec.ZSTD), 1, 2).data
    header = ChunkHeader.decode(sealed)
    key = unwrap_data_key(header.key, recipient, UID)
    for i in range(header.header_len):
        tampered = bytearray(sealed)
        tampered[i] ^= 0x01
        try:
            forged = ChunkHeader.decode(bytes(tampered))
        except ChunkFormatError:
            continue  # rejected before decryption: also fine
        with pytest.raises((AuthenticationError, ChunkFormatError)):
            open_sealed(bytes(tampered), key, forged)


def test_ciphertext_flip_and_truncation(recipient):
    sealed = Sealer(recipient.public_key(), UID).seal(compress(b"q" * 100, Codec.ZSTD), 1, 2).data
    header = ChunkHeader.decode(sealed)
    key = unwrap_data_key(header.key, recipient, UID)
    flipped = bytearray(sealed)
    flipped[-1] ^= 0x80
    with pytest.raises(AuthenticationError, match="modified"):
        open_sealed(bytes(flipped), key)
    with pytest.raises(ChunkFormatError, match="truncated"):
        open_sealed(sealed[:-1], key)


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b"XXXX" + b[4:], "bad magic"),
    (lambda b: b[:4] + b"\x07" + b[5:], "version 7"),
    (lambda b: b[:5] + b"\x09" + b[6:], "codec id 9"),
    (lambda b: b[:6] + b"\x80\x00" + b[8:], "unknown flags"),
    (lambda b: b[:40] + struct.pack(">Q", 2**40) + b[48:], "too large"),
    (lambda b: b[:100], "too short"),
])
def test_malformed_headers(recipient, mutate, match):
    sealed = Sealer(recipient.public_key(), UID).seal(compress(b"r", Codec.NONE), 1, 2).data
    with pytest.raises(ChunkFormatError, match=match):
        ChunkHeader.decode(mutate(sealed))


def test_decompression_is_bounded_by_the_header():
    bomb = zstandard.ZstdCompressor().compress(b"\0" * 10_000_000)
    with pytest.raises(DecompressionError, match="more than the 1000 bytes"):
        decompress(bomb, Codec.ZSTD, 1000)
    with pytest.raises(DecompressionError, match="header says 20000000"):
        decompress(bomb, Codec.ZSTD, 20_000_000)
    with pytest.raises(DecompressionError, match="out of bounds"):
        decompress(bomb, Codec.ZSTD, 2**40)
    with pytest.raises(DecompressionError, match="corrupt"):
        decompress(b"\x28\xb5\x2f\xfd garbage", Codec.ZSTD, 10)
    with pytest.raises(DecompressionError):
        decompress(b"abc", Codec.NONE, 4)


def test_sealer_state_and_repr_hold_no_key(recipient):
    sealer = Sealer(recipient.public_key(), UID, epoch=1)
    key = unwrap_data_key(sealer.key_record, recipient, UID)
    assert key.hex() not in repr(sealer)
    assert repr(key) not in repr(sealer)
    assert (FIXED_HEADER_BYTES_V1, FIXED_HEADER_BYTES) == (201, 235)
    with pytest.raises(ValueError, match="end_ns"):
        sealer.seal(Compressed(Codec.NONE, b"", 0), 5, 4)
    assert sealer.next_seq == 0  # a refused seal spent no sequence number
