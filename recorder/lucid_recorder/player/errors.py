"""Errors the CLI turns into one line on stderr."""

from __future__ import annotations


class PlayerError(Exception):
    """A recording cannot be read or a request cannot be served; the message says why."""


class SourceError(PlayerError):
    """The recording's storage cannot be listed or read."""
