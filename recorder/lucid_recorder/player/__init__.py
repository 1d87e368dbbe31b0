"""The lucid-play CLI and the pieces behind it: sources, timeline, rendering, export, verify."""

from .errors import PlayerError, SourceError
from .source import LocalDirectorySource, RecordingSource, write_local_recording
from .timeline import Recording, Summary, TimeSpan

__all__ = [
    "LocalDirectorySource",
    "PlayerError",
    "Recording",
    "RecordingSource",
    "SourceError",
    "Summary",
    "TimeSpan",
    "write_local_recording",
]
