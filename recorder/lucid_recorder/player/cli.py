"""lucid-play: look at a recording. Pictures first; a summary and a verifier for the rest.

Every failure is one line on stderr and a non-zero exit: 1 for a bad recording or a
failed check, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from PIL import Image

from lucid_recorder.format.errors import FormatError
from lucid_recorder.sealing.cli import ENV_ACCESS_KEY, ENV_SECRET_KEY

from . import text
from .errors import PlayerError
from .export import export_video
from .render import contact_sheet
from .serve import DirObjects, ServeError, SessionObjects, StoreObjects, check_listen, serve
from .source import LocalDirectorySource, RecordingSource
from .timeline import Recording
from .verify import verify

PROG = "lucid-play"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage dump.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _open_source(directory: str) -> RecordingSource:
    return LocalDirectorySource(directory)


# `--at end` asks for the last frame without knowing the duration first.
AT_END = -1


def _time(value: str) -> int:
    if value == "end":
        return AT_END
    try:
        return text.parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return number


def _save(image: Image.Image, path: Path) -> None:
    try:
        image.save(path)
    except ValueError as exc:  # Pillow: unknown extension
        raise PlayerError(f"{path}: {exc}") from None
    except OSError as exc:
        raise PlayerError(f"{path}: cannot write: {exc.strerror or exc}") from None


# -- commands ----------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    recording = Recording(_open_source(args.directory))
    s = recording.summary()
    started = text.wallclock(s.session_start_unix_ns, s.start_ns)
    print(f"recording   {recording.source.describe()}")
    if started:
        print(f"started     {started}")
    print(f"duration    {text.offset(s.duration_ns)} "
          f"({text.offset(s.start_ns)} .. {text.offset(s.end_ns)})")
    print(f"desktop     {s.width}x{s.height}"
          + "".join(f", {w}x{h} at {text.offset(t)}" for t, w, h in s.resizes))
    # Segments here are decrypted and decompressed: what they occupied in the bucket
    # (sealed) is only known to the store; `lucid-seal verify` reads it there.
    print(f"segments    {s.segments}, {text.size(s.segment_bytes)} decrypted")
    print(f"updates     {s.updates} ({s.rectangles} rectangles, "
          f"{text.size(s.pixel_bytes)} of pixels), {s.keyframes} keyframes")
    print(f"pointer     {s.pointer_moves} positions, {s.pointer_shapes} shapes")
    print(f"gaps        {len(s.gaps) + len(s.missing)}")
    for gap in sorted(s.gaps + s.missing, key=lambda g: g.start_ns):
        print(f"  {text.offset(gap.start_ns)} .. {text.offset(gap.end_ns)} "
              f"({gap.duration_ns / 1e9:.3f}s) {gap.reason}")
    if s.stop_reason is None:
        print("stopped     no stop marker (running, or ended without finalizing)")
    else:
        print(f"stopped     {s.stop_reason or '(no reason given)'}")
    return 0


def cmd_frame(args: argparse.Namespace) -> int:
    recording = Recording(_open_source(args.directory))
    t = recording.end_ns if args.at == AT_END else recording.start_ns + args.at
    frame = recording.frame_at(t)
    _save(frame.to_image(with_pointer=args.pointer), args.output)
    print(f"{args.output}: frame at {text.offset(t)}, {frame.width}x{frame.height}")
    return 0


def cmd_contact_sheet(args: argparse.Namespace) -> int:
    recording = Recording(_open_source(args.directory))
    sheet = contact_sheet(recording, count=args.count, columns=args.columns,
                          thumb_width=args.thumb_width, with_pointer=args.pointer)
    _save(sheet, args.output)
    print(f"{args.output}: {args.count} frames, {sheet.width}x{sheet.height}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    recording = Recording(_open_source(args.directory))
    frames = export_video(recording, args.output, fps=args.fps, crf=args.crf,
                          ffmpeg=args.ffmpeg, with_pointer=args.pointer)
    print(f"{args.output}: {frames} frames at {args.fps:g} fps")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify(_open_source(args.directory))
    for line in report.lines:
        print(line)
    if not report.ok:
        first = report.problems[0]
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise PlayerError(f"verification failed: {first}{more}")
    print(f"verified    {args.directory}: all segments decode and chain"
          + (f", {len(report.warnings)} warning(s)" if report.warnings else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lucid_recorder.format.recording import RecordingWriter

    from .source import write_local_recording
    from .synthetic import SyntheticDesktop

    width, height = args.size
    desktop = SyntheticDesktop(width, height, wallpaper=args.wallpaper)
    writer = RecordingWriter(width, height, segment_ns=round(args.segment_seconds * 1e9),
                             session_start_unix_ns=1_795_000_000 * 10**9)
    segments = []
    for item in desktop.session(args.seconds):
        segments += writer.add(item.ts_ns, item.record)
    segments.append(writer.close())
    write_local_recording(args.directory, segments)
    print(f"{args.directory}: {len(segments)} segments of a synthetic {width}x{height} desktop")
    return 0


def _serve_objects(args: argparse.Namespace) -> SessionObjects:
    """The session the page will play: a local copy, or the object store."""
    from lucid_recorder.sealing.manifest import Manifest, SessionIdentity
    from lucid_recorder.storage.errors import StorageError
    from lucid_recorder.storage.layout import SessionLayout
    from lucid_recorder.storage.store import (
        ObjectStore,
        make_client,
        session_arg_parts,
        stored_session,
    )

    if args.from_dir is not None:
        directory = Path(args.from_dir)
        if not directory.is_dir():
            raise ServeError(f"{directory} is not a directory")
        manifest_path = directory / "manifest.json"
        if manifest_path.is_file():
            try:
                identity = Manifest.from_json(manifest_path.read_bytes()).session
            except ValueError as exc:
                raise ServeError(f"{manifest_path} is not a valid manifest: "
                                 f"{str(exc).splitlines()[0]}") from None
            if args.session_uid and args.session_uid != identity.uid:
                raise ServeError(f"{manifest_path} is for session {identity.uid}, not "
                                 f"{args.session_uid}")
        elif args.session_uid:
            identity = SessionIdentity(namespace="", name=directory.name, uid=args.session_uid)
        else:
            raise ServeError(f"{directory} has no manifest.json: give --session-uid")
        return DirObjects(directory, identity)
    if not (args.endpoint and args.bucket and args.session):
        raise ServeError("give --endpoint, --bucket and --session (or --from-dir)")
    access, secret = os.environ.get(ENV_ACCESS_KEY), os.environ.get(ENV_SECRET_KEY)
    if not access or not secret:
        raise ServeError(f"set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} (credentials are never "
                         "taken from the command line)")
    try:
        parts = session_arg_parts(args.session)
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    try:
        client = make_client(args.endpoint, access, secret, secure=not args.no_tls,
                             ca_file=args.ca_file,
                             insecure_skip_verify=args.insecure_skip_verify)
        identity = stored_session(client, args.bucket, args.prefix, parts, args.session)
    except (ValueError, StorageError) as exc:
        raise ServeError(str(exc)) from None
    try:
        store = ObjectStore(client, args.bucket, SessionLayout(args.prefix, identity))
        store.chunk_sizes()  # credentials, bucket and endpoint are checked before serving
    except StorageError as exc:
        raise ServeError(str(exc)) from exc
    return StoreObjects(store)


def cmd_serve(args: argparse.Namespace) -> int:
    check_listen(args.listen, args.allow_remote)
    objects = _serve_objects(args)
    server = serve(objects, args.listen, args.port, allow_remote=args.allow_remote)
    if args.allow_remote and not ipaddress.ip_address(
            args.listen if args.listen != "localhost" else "127.0.0.1").is_loopback:
        print(f"{PROG} serve: warning: listening on {args.listen}, beyond this machine "
              "(--allow-remote)", file=sys.stderr)
    s = objects.session
    print(f"{PROG} serve: {server.url}  session {s.namespace}/{s.name}/{s.uid} from "
          f"{objects.describe()}; the key never leaves the browser. Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {value!r} (use WIDTHxHEIGHT)") from None
    if not (160 <= w <= 8192 and 120 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size out of range: {value} (160x120 .. 8192x8192)")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="summary: duration, segments, updates, gaps, bytes")
    p.add_argument("directory", help="directory holding <seq>.seg files")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("frame", help="render the frame at a time to an image")
    p.add_argument("directory")
    p.add_argument("--at", type=_time, required=True,
                   help="time from the recording start: seconds, M:SS, H:MM:SS, or end")
    p.add_argument("-o", "--output", type=Path, required=True, help="image file, e.g. out.png")
    p.add_argument("--pointer", action="store_true", help="draw the mouse pointer")
    p.set_defaults(run=cmd_frame)

    p = sub.add_parser("contact-sheet", help="thumbnails across the session, with times")
    p.add_argument("directory")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--columns", type=_positive_int, default=4)
    p.add_argument("--count", type=_positive_int, default=16)
    p.add_argument("--thumb-width", type=_positive_int, default=320)
    p.add_argument("--pointer", action="store_true")
    p.set_defaults(run=cmd_contact_sheet)

    p = sub.add_parser("export", help="video through ffmpeg (H.264)")
    p.add_argument("directory")
    p.add_argument("-o", "--output", type=Path, required=True, help="e.g. out.mp4")
    p.add_argument("--fps", type=_positive_float, default=10.0)
    p.add_argument("--crf", type=int, default=20, help="x264 quality, lower is better")
    p.add_argument("--ffmpeg", help="ffmpeg binary (default: ffmpeg on PATH)")
    p.add_argument("--pointer", action="store_true")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("verify", help="check every segment decodes and segments chain")
    p.add_argument("directory")
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("serve", help="the browser player: decrypts in the browser, on this "
                       "machine; this server only passes the sealed objects through")
    src = p.add_argument_group("source: object store (credentials from $LUCID_S3_ACCESS_KEY "
                               "and $LUCID_S3_SECRET_KEY)")
    src.add_argument("--endpoint", help="host:port of the S3 API")
    src.add_argument("--bucket")
    src.add_argument("--prefix", default="recordings", help="storage.keyPrefix")
    src.add_argument("--session", help="NAMESPACE/NAME[/UID] of the RecordingSession")
    src.add_argument("--no-tls", action="store_true", help="plain HTTP")
    src.add_argument("--ca-file", type=Path, help="CA bundle for HTTPS")
    src.add_argument("--insecure-skip-verify", action="store_true")
    local = p.add_argument_group("source: local copy")
    local.add_argument("--from-dir", help="directory with chunks/*.lrec and manifest.json")
    local.add_argument("--session-uid", help="session UID when there is no manifest")
    p.add_argument("--listen", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others need --allow-remote)")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --listen address such as 0.0.0.0")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("demo", help="write a synthetic recording to try the other commands")
    p.add_argument("directory")
    p.add_argument("--seconds", type=_positive_float, default=30.0)
    p.add_argument("--segment-seconds", type=_positive_float, default=10.0)
    p.add_argument("--size", type=_size, default=(1024, 768))
    p.add_argument("--wallpaper", choices=("flat", "photo"), default="flat")
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ServeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (PlayerError, FormatError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
