"""Seeking and summarising a recording stored as a directory of segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from lucid_recorder.format import (
    DesktopResize,
    FinishedSegment,
    Framebuffer,
    Gap,
    RecordingWriter,
    Rect,
    TimedRecord,
)
from lucid_recorder.player import (
    LocalDirectorySource,
    PlayerError,
    Recording,
    RecordingSource,
    SourceError,
    write_local_recording,
)
from lucid_recorder.player.synthetic import SyntheticDesktop

NS = 1_000_000_000


def make_recording(directory: Path) -> list[TimedRecord]:
    return make_segments(directory)[0]


def make_segments(directory: Path) -> tuple[list[TimedRecord], list[FinishedSegment]]:
    records = list(SyntheticDesktop(160, 120).session(6, gap_s=(2.0, 2.5),
                                                      resize_at_s=(4.0, 200, 150)))
    writer = RecordingWriter(160, 120, segment_ns=NS, keyframe_interval_ns=NS // 2,
                             session_start_unix_ns=1_795_000_000 * NS)
    segments = [s for r in records for s in writer.add(r.ts_ns, r.record)]
    segments.append(writer.close())
    write_local_recording(directory, segments)
    return records, segments


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TimedRecord]]:
    directory = tmp_path_factory.mktemp("rec")
    return directory, make_recording(directory)


def truth(records: list[TimedRecord], t_ns: int) -> Framebuffer:
    fb = Framebuffer(160, 120)
    for item in records:
        if item.ts_ns > t_ns:
            break
        fb.apply(item.record)
    return fb


def test_source_satisfies_protocol(recorded: tuple[Path, list[TimedRecord]]) -> None:
    source = LocalDirectorySource(recorded[0])
    assert isinstance(source, RecordingSource)
    assert source.sequence_numbers() == list(range(len(source.sequence_numbers())))


@pytest.mark.parametrize("t", [0.0, 0.5, 0.999, 1.0, 1.04, 2.2, 2.6, 3.99, 4.0, 4.5, 6.0])
def test_frame_at_equals_replaying_everything(recorded: tuple[Path, list[TimedRecord]],
                                              t: float) -> None:
    directory, records = recorded
    recording = Recording(LocalDirectorySource(directory))
    frame = recording.frame_at(round(t * NS))
    expected = truth(records, round(t * NS))
    assert (frame.width, frame.height) == (expected.width, expected.height)
    assert frame.pixels == expected.pixels
    assert frame.pointer == expected.pointer


def test_frames_at_in_one_pass_matches_seeking(recorded: tuple[Path, list[TimedRecord]]) -> None:
    recording = Recording(LocalDirectorySource(recorded[0]))
    times = [round(i * 0.37 * NS) for i in range(17)]
    stepped = [(t, bytes(fb.pixels)) for t, fb in recording.frames_at(times)]
    assert stepped == [(t, bytes(recording.frame_at(t).pixels)) for t in times]


def test_time_outside_recording_is_an_error(recorded: tuple[Path, list[TimedRecord]]) -> None:
    recording = Recording(LocalDirectorySource(recorded[0]))
    with pytest.raises(PlayerError, match="outside the recording"):
        recording.frame_at(7 * NS)


def test_summary_counts(recorded: tuple[Path, list[TimedRecord]]) -> None:
    directory, records = recorded
    summary = Recording(LocalDirectorySource(directory)).summary()
    rects = [r for r in records if isinstance(r.record, Rect)]
    assert summary.rectangles == len(rects)
    assert summary.updates == len({r.ts_ns for r in rects})
    assert summary.duration_ns == 6 * NS
    assert summary.segments == len(list(directory.glob("*.seg"))) == 5
    # The files hold the decrypted segments: their size is what the summary counts.
    assert summary.segment_bytes == sum(p.stat().st_size for p in directory.glob("*.seg"))
    gaps = [r.record for r in records if isinstance(r.record, Gap)]
    assert [(g.start_ns, g.end_ns) for g in summary.gaps] == [(g.start_ns, g.end_ns) for g in gaps]
    resize = next(r for r in records if isinstance(r.record, DesktopResize))
    assert summary.resizes == [(resize.ts_ns, 200, 150)]
    assert summary.missing == []
    assert summary.stop_reason == "session ended"


def test_lost_segment_loses_only_its_span(tmp_path: Path) -> None:
    records, segments = make_segments(tmp_path)
    (tmp_path / "000002.seg").unlink()
    recording = Recording(LocalDirectorySource(tmp_path))
    [lost] = recording.missing_spans()
    gone = segments[2]
    assert (lost.start_ns, lost.end_ns, lost.reason) == (gone.start_ns, gone.end_ns,
                                                         "segment 2 missing")
    # Inside the hole the player holds the last frame before it; after it, all is exact again.
    inside = (gone.start_ns + gone.end_ns) // 2
    assert recording.frame_at(inside).pixels == truth(records, gone.start_ns - 1).pixels
    after = gone.end_ns + NS // 3
    assert recording.frame_at(after).pixels == truth(records, after).pixels


def test_directory_problems_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a directory"):
        LocalDirectorySource(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.raises(PlayerError, match="no segments"):
        Recording(LocalDirectorySource(tmp_path))
    (tmp_path / "1.seg").write_bytes(b"")
    (tmp_path / "0001.seg").write_bytes(b"")
    with pytest.raises(SourceError, match="two files for segment 1"):
        LocalDirectorySource(tmp_path)


def test_renamed_segment_is_detected(tmp_path: Path) -> None:
    make_recording(tmp_path)
    (tmp_path / "000003.seg").rename(tmp_path / "000009.seg")
    with pytest.raises(PlayerError, match="segment 9: header says it is segment 3"):
        Recording(LocalDirectorySource(tmp_path))
