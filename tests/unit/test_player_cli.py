"""lucid-play end to end on a generated recording: pictures, summary, verify, video, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lucid_recorder.format import Framebuffer, Gap, RecordingWriter, Stop, TimedRecord
from lucid_recorder.player import write_local_recording
from lucid_recorder.player.cli import main
from lucid_recorder.player.render import sheet_layout
from lucid_recorder.player.synthetic import SyntheticDesktop

NS = 1_000_000_000


def record(directory: Path, seconds: float = 6.0) -> list[TimedRecord]:
    records = list(SyntheticDesktop(160, 120).session(seconds, gap_s=(2.0, 2.5)))
    writer = RecordingWriter(160, 120, segment_ns=NS, session_start_unix_ns=1_795_000_000 * NS)
    segments = [s for r in records for s in writer.add(r.ts_ns, r.record)]
    segments.append(writer.close())
    write_local_recording(directory, segments)
    return records


@pytest.fixture
def rec(tmp_path: Path) -> tuple[Path, list[TimedRecord]]:
    directory = tmp_path / "rec"
    return directory, record(directory)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, fragment: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("lucid-play: error: "), err
    assert fragment in err, err


def test_info(rec: tuple[Path, list[TimedRecord]], capsys: pytest.CaptureFixture[str]) -> None:
    directory, records = rec
    code, out, err = run(capsys, "info", str(directory))
    assert code == 0, err
    gap = next(r.record for r in records if isinstance(r.record, Gap))
    lines = dict(line.split(None, 1) for line in out.splitlines() if not line.startswith(" "))
    assert lines["duration"] == "0:06.000 (0:00.000 .. 0:06.000)"
    assert lines["desktop"] == "160x120"
    assert lines["started"] == "2026-11-18 11:06:40.000Z"
    assert lines["segments"].startswith("5, ")
    # What info reads is decrypted: it must not call that size "stored".
    assert lines["segments"].endswith(" decrypted") and "stored" not in out
    assert lines["updates"].split()[0].isdigit()
    assert lines["gaps"] == "1"
    assert f"0:02.000 .. 0:0{gap.end_ns / NS:.3f} " in out
    assert "connection lost; reconnected" in out
    assert lines["stopped"] == "session ended"


def test_frame_png_equals_framebuffer(rec: tuple[Path, list[TimedRecord]], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    directory, records = rec
    out_png = tmp_path / "frame.png"
    code, _, err = run(capsys, "frame", str(directory), "--at", "3.3", "-o", str(out_png))
    assert code == 0, err
    expected = Framebuffer(160, 120)
    for item in records:
        if item.ts_ns <= 3_300_000_000:
            expected.apply(item.record)
    with Image.open(out_png) as image:
        assert image.mode == "RGB" and image.size == (160, 120)
        assert image.tobytes() == bytes(expected.pixels)


def test_frame_accepts_clock_notation(rec: tuple[Path, list[TimedRecord]], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "frame", str(rec[0]), "--at", "0:05.5", "-o",
                       str(tmp_path / "f.png"), "--pointer")
    assert code == 0 and "frame at 0:05.500" in out


def test_contact_sheet_size(rec: tuple[Path, list[TimedRecord]], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "sheet.png"
    code, _, err = run(capsys, "contact-sheet", str(rec[0]), "-o", str(sheet), "--columns", "3",
                       "--count", "7", "--thumb-width", "100")
    assert code == 0, err
    layout = sheet_layout(160, 120, 7, 3, 100)
    assert (layout.columns, layout.rows, layout.thumb_height) == (3, 3, 75)
    with Image.open(sheet) as image:
        assert image.size == layout.size == (6 + 3 * 106, 6 + 3 * (75 + 18 + 6))


def test_verify_ok(rec: tuple[Path, list[TimedRecord]], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "verify", str(rec[0]))
    assert code == 0, err
    assert out.count("ok       segment") == 5
    assert "gap      0:02.000.." in out
    assert "verified" in out.splitlines()[-1]


def test_verify_detects_missing_segment(rec: tuple[Path, list[TimedRecord]],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (rec[0] / "000003.seg").unlink()
    code, out, err = run(capsys, "verify", str(rec[0]))
    assert code == 1
    assert "PROBLEM  segment 3 missing (" in out
    assert_one_line_error(err, "verification failed: segment 3 missing")


def test_verify_detects_corruption_with_offset(rec: tuple[Path, list[TimedRecord]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = rec[0] / "000001.seg"
    path.write_bytes(path.read_bytes()[:-30])
    code, out, err = run(capsys, "verify", str(rec[0]))
    assert code == 1
    assert "PROBLEM  segment 1: at byte" in out
    assert_one_line_error(err, "segment 1: at byte")


def test_verify_warns_without_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [r for r in SyntheticDesktop(160, 120).session(1.0) if not isinstance(r.record, Stop)]
    writer = RecordingWriter(160, 120, segment_ns=NS)
    segments = [s for r in records for s in writer.add(r.ts_ns, r.record)]
    write_local_recording(tmp_path, [*segments, writer.close()])
    code, out, _ = run(capsys, "verify", str(tmp_path))
    assert code == 0
    assert "warning  no stop marker" in out


def test_export_video(rec: tuple[Path, list[TimedRecord]], tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    # Not skipped when missing: ffmpeg is part of the bootstrap, and export is a feature.
    assert shutil.which("ffmpeg"), "ffmpeg missing: apt-get install ffmpeg"
    video = tmp_path / "out.mp4"
    code, out, err = run(capsys, "export", str(rec[0]), "-o", str(video), "--fps", "5")
    assert code == 0, err
    assert "31 frames at 5 fps" in out
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,nb_read_frames,codec_name", "-of", "json", str(video)],
        check=True, capture_output=True, text=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 160, 120)
    assert int(stream["nb_read_frames"]) == 31


def test_export_without_ffmpeg(rec: tuple[Path, list[TimedRecord]], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export", str(rec[0]), "-o", str(tmp_path / "o.mp4"),
                       "--ffmpeg", str(tmp_path / "no-ffmpeg"))
    assert code == 1
    assert_one_line_error(err, "not found: install ffmpeg")


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["info", "{missing}"], 1, "not a directory"),
        (["info", "{empty}"], 1, "no segments"),
        (["frame", "{rec}", "--at", "99", "-o", "{tmp}/f.png"], 1, "outside the recording"),
        (["frame", "{rec}", "--at", "soon", "-o", "{tmp}/f.png"], 2, "not a time"),
        (["frame", "{rec}", "--at", "1", "-o", "{tmp}/f.unknown"], 1, "unknown file extension"),
        (["frame", "{rec}", "--at", "1", "-o", "{tmp}/no/such/dir/f.png"], 1, "cannot write"),
        (["contact-sheet", "{rec}", "-o", "{tmp}/s.png", "--count", "0"], 2, "at least 1"),
        (["export", "{rec}", "-o", "{tmp}/o.mp4", "--fps", "-3"], 2, "must be positive"),
        (["info", "{garbage}"], 1, "segment 0: at byte 0: not a Lucid segment"),
        (["nonsense"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line(rec: tuple[Path, list[TimedRecord]], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                             fragment: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "0.seg").write_bytes(b"not a segment at all, just text")
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "rec": rec[0],
             "tmp": tmp_path, "garbage": tmp_path / "garbage"}
    argv = [a.format(**paths) for a in argv]
    if code == 2:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
    else:
        got, _, err = run(capsys, *argv)
        assert got == code
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert fragment in err, err


def test_module_entry_point(rec: tuple[Path, list[TimedRecord]]) -> None:
    done = subprocess.run([sys.executable, "-m", "lucid_recorder.player", "info", str(rec[0])],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("recording")


def test_demo_writes_a_playable_recording(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", str(tmp_path / "d"), "--seconds", "2", "--size", "160x120",
                       "--segment-seconds", "1")
    assert code == 0, err
    code, _, err = run(capsys, "verify", str(tmp_path / "d"))
    assert code == 0, err
