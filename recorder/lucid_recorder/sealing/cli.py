"""lucid-seal: recipient keys, and verification/decryption of recorded sessions.

    lucid-seal keygen --out-dir DIR
    lucid-seal verify  SOURCE --private-key FILE [--operator-key FILE] [--anchor FILE]
                       [--report out.json] [--json]
    lucid-seal decrypt SOURCE --private-key FILE --out-dir DIR

SOURCE is either the object store (--endpoint, --bucket, --prefix,
--session NAMESPACE/NAME[/UID]; credentials only from the environment
variables LUCID_S3_ACCESS_KEY and LUCID_S3_SECRET_KEY, so they never show in
`ps` or shell history) or a local copy of a session directory (--from-dir,
holding chunks/*.lrec, manifest.json and seals/*.json). --operator-key checks
the recording against the operator's seals (docs/storage.md, "Seals");
--anchor adds a seal exported from the session's status (kubectl get rsess NAME
-o jsonpath='{.status.evidence.seal}'). Exit status: 0 verified, 1
verification found problems, 2 the command could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from lucid_common.api import Seal
from lucid_common.evidence import EvidenceKeyError, load_operator_public, parse_seal
from lucid_common.layout import MAX_MANIFEST_BYTES
from lucid_recorder.sealing.errors import SealingError
from lucid_recorder.sealing.keys import keygen, read_private_key, short_fingerprint
from lucid_recorder.sealing.manifest import Manifest, SessionIdentity
from lucid_recorder.sealing.verify import Segment, Trust, VerifyReport, verify_and_decrypt
from lucid_recorder.storage.errors import StorageError
from lucid_recorder.storage.layout import SessionLayout, parse_chunk_name
from lucid_recorder.storage.store import (
    MAX_SEAL_BYTES,
    ObjectStore,
    ObjectTooLargeError,
    make_client,
    session_arg_parts,
    stored_session,
)

ENV_ACCESS_KEY = "LUCID_S3_ACCESS_KEY"
ENV_SECRET_KEY = "LUCID_S3_SECRET_KEY"
ENV_KEY_PASSPHRASE = "LUCID_KEY_PASSPHRASE"


class CliError(Exception):
    """A one-line reason the command cannot run."""


@dataclass
class Session:
    manifest: Manifest | None
    chunks: Mapping[int, bytes]
    uid: str | None
    where: str
    identity: SessionIdentity | None = None  # what --session asked for
    seals: list[tuple[str, Seal | str]] | None = None
    manifest_unread: str | None = None
    stray: list[str] | None = None
    store: ObjectStore | None = None
    rewritten: list[str] | None = None  # None: a local copy, or versions not listable


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lucid-seal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("keygen", help="write private.pem (0600) and public.pem")
    gen.add_argument("--out-dir", type=Path, required=True)
    gen.add_argument("--passphrase-from-env", action="store_true",
                     help=f"encrypt private.pem with the passphrase in ${ENV_KEY_PASSPHRASE}")

    for name, text in (("verify", "check a session and print a report"),
                       ("decrypt", "write the plaintext segments as <seq>.seg files")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--private-key", type=Path, required=True)
        src = cmd.add_argument_group("source: object store (or --from-dir)")
        src.add_argument("--endpoint", help="host:port of the S3 API")
        src.add_argument("--bucket")
        src.add_argument("--prefix", default="recordings", help="storage.keyPrefix")
        src.add_argument("--session", help="NAMESPACE/NAME[/UID] of the RecordingSession; with "
                         "--from-dir, what the copy must belong to")
        src.add_argument("--no-tls", action="store_true", help="plain HTTP")
        src.add_argument("--ca-file", type=Path, help="CA bundle for HTTPS")
        src.add_argument("--insecure-skip-verify", action="store_true")
        local = cmd.add_argument_group("source: local copy")
        local.add_argument("--from-dir", type=Path,
                           help="directory with chunks/*.lrec and manifest.json")
        local.add_argument("--session-uid", help="session UID when there is no manifest")
        cmd.add_argument("--operator-key", type=Path,
                         help="the operator's public key (PEM): check the recording against "
                         "its seals")
        cmd.add_argument("--anchor", type=Path,
                         help="a seal exported from the session's status.evidence.seal (JSON)")
        if name == "verify":
            cmd.add_argument("--json", action="store_true", help="print the report as JSON")
            cmd.add_argument("--report", type=Path,
                             help="write the audit report as JSON to this file")
        else:
            cmd.add_argument("--out-dir", type=Path, required=True)
    return parser


def _passphrase() -> bytes | None:
    value = os.environ.get(ENV_KEY_PASSPHRASE)
    return value.encode() if value else None


# -- sources -------------------------------------------------------------------


class _DirChunks(Mapping[int, bytes]):
    def __init__(self, directory: Path) -> None:
        self._paths: dict[int, Path] = {}
        self.stray: list[str] = []
        for path in sorted(directory.iterdir()):
            if path.suffix != ".lrec":
                continue
            seq = parse_chunk_name(path.name)
            if seq is None:
                self.stray.append(path.name)
            else:
                self._paths[seq] = path

    def __getitem__(self, seq: int) -> bytes:
        return self._paths[seq].read_bytes()

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._paths))

    def __len__(self) -> int:
        return len(self._paths)


def _first_error(exc: ValidationError) -> str:
    """The first problem, with the field it is in, on one line: what a user can fix."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return " ".join(f"{where}: {first['msg']}{more}".split())


def _session_parts(value: str) -> list[str]:
    try:
        return session_arg_parts(value)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _dir_seals(directory: Path) -> list[tuple[str, Seal | str]]:
    found: list[tuple[str, Seal | str]] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.json")):
        name = f"seals/{path.name}"
        if path.stat().st_size > MAX_SEAL_BYTES:
            found.append((name, f"{path.stat().st_size} bytes is more than a seal may have"))
            continue
        try:
            found.append((name, parse_seal(path.read_bytes())))
        except ValueError as exc:
            found.append((name, f"not a seal: {' '.join(str(exc).split())[:200]}"))
    return found


def _from_dir(args: argparse.Namespace) -> Session:
    directory: Path = args.from_dir
    uid: str | None = args.session_uid
    identity = None
    if args.session:
        parts = _session_parts(args.session)
        uid = parts[2] if len(parts) == 3 else uid
        identity = SessionIdentity(namespace=parts[0], name=parts[1], uid=uid or "")
    if not directory.is_dir():
        raise CliError(f"{directory} is not a directory")
    manifest_path = directory / "manifest.json"
    manifest = None
    unread = None
    if manifest_path.exists():
        size = manifest_path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            unread = (f"manifest {manifest_path} is {size} bytes, more than the "
                      f"{MAX_MANIFEST_BYTES} bytes it may have: not read")
        else:
            try:
                manifest = Manifest.from_json(manifest_path.read_bytes())
            except ValidationError as exc:
                raise CliError(f"{manifest_path} is not a valid manifest: "
                               f"{_first_error(exc)}") from exc
    chunks_dir = directory / "chunks" if (directory / "chunks").is_dir() else directory
    chunks = _DirChunks(chunks_dir)
    return Session(manifest, chunks, uid, str(directory), identity=identity,
                   seals=_dir_seals(directory / "seals"), manifest_unread=unread,
                   stray=chunks.stray)


def _from_store(args: argparse.Namespace) -> Session:
    if not (args.endpoint and args.bucket and args.session):
        raise CliError("give --endpoint, --bucket and --session (or --from-dir)")
    access, secret = os.environ.get(ENV_ACCESS_KEY), os.environ.get(ENV_SECRET_KEY)
    if not access or not secret:
        raise CliError(f"set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} (credentials are never "
                       "taken from the command line)")
    parts = _session_parts(args.session)
    client = make_client(args.endpoint, access, secret, secure=not args.no_tls,
                         ca_file=args.ca_file, insecure_skip_verify=args.insecure_skip_verify)
    try:
        try:
            identity = stored_session(client, args.bucket, args.prefix, parts, args.session)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        layout = SessionLayout(args.prefix, identity)
        store = ObjectStore(client, args.bucket, layout)
        unread = None
        try:
            manifest = store.get_manifest()
        except ObjectTooLargeError as exc:
            manifest, unread = None, str(exc)
        chunks, stray = store.chunks_and_stray()
        seals = store.seals() if args.operator_key is not None else []
        rewritten = store.rewritten()
    except StorageError as exc:
        raise CliError(str(exc)) from exc
    except ValidationError as exc:
        raise CliError(f"manifest.json is not a valid manifest: {_first_error(exc)}") from exc
    return Session(manifest, chunks, identity.uid, f"s3://{args.bucket}/{layout.root}",
                   identity=identity, seals=seals, manifest_unread=unread, stray=stray,
                   store=store, rewritten=rewritten)


def _open(args: argparse.Namespace) -> Session:
    if args.from_dir is not None:
        return _from_dir(args)
    return _from_store(args)


def _read_anchor(path: Path) -> Seal:
    """A seal as exported: the seal itself, status.evidence, or a whole RecordingSession."""
    try:
        data = json.loads(path.read_bytes()[:MAX_SEAL_BYTES * 4])
    except ValueError as exc:
        raise CliError(f"--anchor {path} is not JSON: {exc}") from exc
    if isinstance(data, dict) and "status" in data:
        data = (data.get("status") or {}).get("evidence") or {}
    if isinstance(data, dict) and "seal" in data and "session" not in data:
        data = data["seal"]
    if not isinstance(data, dict):
        raise CliError(f"--anchor {path} holds no seal")
    try:
        return parse_seal(data)
    except ValidationError as exc:
        raise CliError(f"--anchor {path} is not a seal: {_first_error(exc)}") from exc


def _trust(args: argparse.Namespace, session: Session) -> Trust | None:
    if args.operator_key is None:
        if args.anchor is not None:
            raise CliError("--anchor needs --operator-key: a seal means nothing unchecked")
        return None
    try:
        key = load_operator_public(args.operator_key.read_bytes(), str(args.operator_key))
    except EvidenceKeyError as exc:
        raise CliError(str(exc)) from exc
    anchor = _read_anchor(args.anchor) if args.anchor is not None else None
    return Trust(key, session.seals or [], anchor)


def _retention(store: ObjectStore | None, session: Session) -> dict[str, object]:
    """The earliest Object Lock retain-until over the session's objects, or "none"."""
    if store is None:
        return {"until": None, "note": "a local copy has no retention"}
    keys = [store.layout.manifest_key, *(store.layout.chunk_key(seq) for seq in session.chunks),
            *(store.layout.root + name for name, _ in session.seals or [])]
    found: list[tuple[str, str]] = []
    without = 0
    for key in keys:
        try:
            got = store.retention_of(key)
        except StorageError as exc:
            return {"until": None, "note": f"could not be read: {exc}"}
        if got is None:
            without += 1
        else:
            found.append(got)
    if not found:
        return {"until": None, "note": "no object lock retention on the objects",
                "objects": len(keys)}
    mode, until = min(found, key=lambda item: item[1])
    return {"mode": mode, "until": until, "objects": len(keys), "without": without}


# -- commands ------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    password = _passphrase() if args.passphrase_from_env else None
    if args.passphrase_from_env and not password:
        raise CliError(f"--passphrase-from-env given but ${ENV_KEY_PASSPHRASE} is empty")
    try:
        files = keygen(args.out_dir, password)
    except FileExistsError as exc:
        raise CliError(str(exc)) from exc
    print(f"private key: {files.private} (keep it off the cluster)")
    print(f"public key:  {files.public} (fingerprint {short_fingerprint(files.fingerprint)})")
    print("store it: kubectl create secret generic <name> "
          f"--from-file=publicKey={files.public}")
    return 0


def _check(args: argparse.Namespace, sink_dir: Path | None) -> int:
    key = read_private_key(args.private_key, _passphrase())
    session = _open(args)
    if session.manifest is None and session.uid is None:
        raise CliError(f"{session.where} has no manifest.json: give the session UID "
                       "(--session NAMESPACE/NAME/UID, or --session-uid)")
    sink = None
    if sink_dir is not None:
        sink_dir.mkdir(parents=True, exist_ok=True)
        if any(sink_dir.glob("*.seg")):
            raise CliError(f"{sink_dir} already holds .seg files; use an empty directory")

        def sink(segment: Segment) -> None:
            (sink_dir / f"{segment.seq:08d}.seg").write_bytes(segment.plaintext)

    trust = _trust(args, session)
    report = verify_and_decrypt(session.manifest, session.chunks, key,
                                session_uid=session.uid, sink=sink, session=session.identity,
                                trust=trust, manifest_unread=session.manifest_unread,
                                stray=session.stray or (),
                                rewritten=session.rewritten or ())
    if getattr(args, "report", None) is not None or trust is not None:
        report.retention = _retention(session.store, session)
    # decrypt writes files; its report goes to stderr like any other diagnostics.
    _print_report(report, session.where, as_json=getattr(args, "json", False),
                  out=sys.stdout if sink_dir is None else sys.stderr)
    if getattr(args, "report", None) is not None:
        args.report.write_text(json.dumps({"source": session.where, **report.to_dict()},
                                          indent=1) + "\n")
    if sink_dir is not None:
        (sink_dir / "verify-report.json").write_text(json.dumps(report.to_dict(), indent=1))
    if not report.ok:
        # The report may be long (or on stdout); scripts and humans get one line here.
        first = report.headline() or report.problems[0]
        where = f"chunk {first.chunk}" if first.chunk is not None else "session"
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        print(f"lucid-seal {args.command}: FAILED: [{where}] {first.code}: "
              f"{first.message}{more}", file=sys.stderr)
        return 1
    return 0


def _print_report(report: VerifyReport, where: str, *, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps({"source": where, **report.to_dict()}, indent=1), file=out)
        return
    print(f"source {where}", file=out)
    for line in report.lines():
        print(line, file=out)
    print("", file=out)
    for line in report.audit_lines():
        print(line, file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help and on usage errors; report its status instead.
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "keygen":
            return _keygen(args)
        return _check(args, args.out_dir if args.command == "decrypt" else None)
    except (CliError, SealingError, StorageError, OSError) as exc:
        print(f"lucid-seal {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
