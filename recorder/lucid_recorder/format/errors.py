"""Decoder errors. Each one names the byte offset where the segment stopped making sense."""

from __future__ import annotations


class FormatError(Exception):
    """A segment is not a valid Lucid record stream.

    `offset` is the byte offset (from the start of the segment) of the field
    that failed, so that a corrupted file can be inspected with a hex dump.
    """

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"at byte {offset}: {message}")
        self.offset = offset
        self.detail = message


class BadMagic(FormatError):
    """The data does not start with the segment magic."""


class UnsupportedVersion(FormatError):
    """The header names a format version this decoder does not know."""


class Truncated(FormatError):
    """The data ends before the structure it announces (including a missing trailer)."""


class UnknownRecordType(FormatError):
    """A record type byte this version does not define."""


class OutOfBounds(FormatError):
    """A rectangle, size or pointer lies outside what the format allows."""


class LengthMismatch(FormatError):
    """A length, count or dimension disagrees with the data or with the trailer."""


class TimeWentBackwards(FormatError):
    """A record's timestamp is earlier than the record before it."""


class BadValue(FormatError):
    """A field holds a value the format forbids (reserved bits, bad UTF-8, overlong varint)."""
