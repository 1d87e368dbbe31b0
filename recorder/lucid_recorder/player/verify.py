"""Check a recording end to end: every segment decodes, and segments chain without holes.

The pipeline's cryptographic checks (chunk signatures, hash chain) will run before
this, in the source; what is checked here is the record stream itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from lucid_recorder.format.errors import FormatError
from lucid_recorder.format.reader import Segment, read_segment
from lucid_recorder.format.records import Gap, Start, Stop

from . import text
from .errors import SourceError
from .source import RecordingSource


@dataclass
class VerifyReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self.lines.append(f"PROBLEM  {message}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.lines.append(f"warning  {message}")


def verify(source: RecordingSource) -> VerifyReport:
    report = VerifyReport()
    seqs = source.sequence_numbers()
    if not seqs:
        report.problem(f"{source.describe()}: no segments")
        return report
    if seqs[0] != 0:
        report.problem(f"segments 0..{seqs[0] - 1} missing (recording starts at {seqs[0]})")
    decoded: dict[int, Segment] = {}
    for seq in seqs:
        try:
            segment = read_segment(source.read(seq))
        except (FormatError, SourceError) as exc:
            report.problem(f"segment {seq}: {exc}")
            continue
        decoded[seq] = segment
        if segment.header.seq != seq:
            report.problem(f"segment {seq}: header says it is segment {segment.header.seq}")
        report.lines.append(
            f"ok       segment {seq}: "
            f"{text.offset(segment.start_ns)}..{text.offset(segment.end_ns)}"
            f", {len(segment.records)} records, {text.size(segment.size)}")
    _check_chain(seqs, decoded, report)
    _check_markers(seqs, decoded, report)
    return report


def _check_chain(seqs: list[int], decoded: dict[int, Segment], report: VerifyReport) -> None:
    starts = {s.header.session_start_unix_ns for s in decoded.values()}
    if len(starts) > 1:
        report.problem("segments come from different sessions (session start times differ)")
    for a, b in pairwise(seqs):
        sa, sb = decoded.get(a), decoded.get(b)
        span = (f" ({text.offset(sa.end_ns)}..{text.offset(sb.start_ns)} lost)"
                if sa and sb else "")
        if b != a + 1:
            which = f"segment {a + 1}" if b == a + 2 else f"segments {a + 1}..{b - 1}"
            report.problem(f"{which} missing{span}")
        elif sa and sb and sb.start_ns != sa.end_ns:
            kind = "gap" if sb.start_ns > sa.end_ns else "overlap"
            report.problem(f"time {kind} between segments {a} and {b}: segment {a} ends at "
                           f"{text.offset(sa.end_ns)}, segment {b} starts at "
                           f"{text.offset(sb.start_ns)}")


def _check_markers(seqs: list[int], decoded: dict[int, Segment], report: VerifyReport) -> None:
    for seq in seqs:
        segment = decoded.get(seq)
        if segment is None:
            continue
        for item in segment.records:
            if isinstance(item.record, Gap):
                gap = item.record
                report.lines.append(
                    f"gap      {text.offset(gap.start_ns)}..{text.offset(gap.end_ns)} "
                    f"({(gap.end_ns - gap.start_ns) / 1e9:.3f}s, recorded in segment {seq})"
                    + (f": {gap.reason}" if gap.reason else ""))
    first, last = decoded.get(seqs[0]), decoded.get(seqs[-1])
    if first is not None and not any(isinstance(i.record, Start) for i in first.records):
        report.warn(f"no start marker in segment {seqs[0]}: the beginning may be missing")
    if last is not None and not any(isinstance(i.record, Stop) for i in last.records):
        report.warn(f"no stop marker in segment {seqs[-1]}: the recording is still running, "
                    f"or it ended without finalizing (its last segments may be missing)")
