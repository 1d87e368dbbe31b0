"""Video export: raw RGB frames piped into ffmpeg (Debian's ffmpeg is enough)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import PlayerError
from .render import fit
from .timeline import Recording

NS = 1_000_000_000


def find_ffmpeg(explicit: str | None = None) -> str:
    found = shutil.which(explicit or "ffmpeg")
    if found is None:
        where = explicit or "ffmpeg on PATH"
        raise PlayerError(f"{where} not found: install ffmpeg (Debian: apt-get install ffmpeg) "
                          f"or pass --ffmpeg PATH")
    return found


def frame_times(start_ns: int, end_ns: int, fps: float) -> list[int]:
    count = int((end_ns - start_ns) * fps // NS) + 1
    return [start_ns + round(k * NS / fps) for k in range(count)]


def export_video(recording: Recording, output: Path, *, fps: float, crf: int = 20,
                 ffmpeg: str | None = None, with_pointer: bool = False) -> int:
    """Write `output` (container from its extension); returns the number of frames."""
    binary = find_ffmpeg(ffmpeg)
    # yuv420p (what players accept) needs even sizes.
    width, height = recording.width + recording.width % 2, recording.height + recording.height % 2
    command = [
        binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}",
        "-i", "pipe:0",
        "-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p",
        str(output),
    ]
    frames = 0
    # stderr goes to a file so a chatty ffmpeg can never block on a full pipe.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors)
        assert process.stdin is not None
        try:
            for _, fb in recording.frames_at(frame_times(recording.start_ns, recording.end_ns,
                                                         fps)):
                image = fb.to_image(with_pointer=with_pointer)
                if image.size != (width, height):
                    image = fit(image, width, height)
                process.stdin.write(image.tobytes())
                frames += 1
            process.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg exited early; its message is read below
        except BaseException:
            process.kill()
            process.wait()
            raise
        code = process.wait()
        if code != 0:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else "no message"
            raise PlayerError(f"ffmpeg failed (exit {code}): {last}")
    return frames
