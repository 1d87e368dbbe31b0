"""Pixel layout transforms. Pure bytes slicing so they run at C speed without numpy."""

from __future__ import annotations


def to_planar(rgb: bytes) -> bytes:
    """RGBRGB... -> RR..GG..BB.. : each plane is smooth on its own, which zstd matches better."""
    return rgb[0::3] + rgb[1::3] + rgb[2::3]


def from_planar(planar: bytes | memoryview) -> bytes:
    n = len(planar) // 3
    out = bytearray(len(planar))
    out[0::3] = planar[:n]
    out[1::3] = planar[n : 2 * n]
    out[2::3] = planar[2 * n :]
    return bytes(out)


def xor_bytes(a: bytes | memoryview, b: bytes | memoryview) -> bytes:
    """Byte-wise XOR of two equally long buffers (big-int XOR runs in C)."""
    n = len(a)
    if len(b) != n:
        raise ValueError("xor of buffers with different lengths")
    x = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
    return x.to_bytes(n, "little")
