"""Record each real desktop workload once, as plain segments, to re-encode offline.

    .venv/bin/python -m bench.corpus                       # every workload, 60 s each
    .venv/bin/python -m bench.corpus --only browser --seconds 30

A live desktop never repeats itself exactly, so comparing two encoders on two live runs
mixes the encoders' difference with the runs'. The corpus fixes the input: the capture
child (bench.child capture, spec defaults, native core) writes every segment it makes to
bench/results/corpus/WORKLOAD/SEQ.seg, and bench.levers decodes those segments back into
the exact update stream and encodes it again with each lever on and off, in one process.
The corpus is large (tens of MB per workload) and is not committed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from bench.common import RESULTS_DIR, Context, log, scratch_context
from bench.profile import run_on_workload
from lucid_devstack.workloads import WORKLOADS

CORPUS_DIR = RESULTS_DIR / "corpus"


def record(ctx: Context, name: str, seconds: float, depth: int, workdir: Path) -> Path:
    out = CORPUS_DIR / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = run_on_workload(ctx, name, "capture", depth, seconds, workdir / name,
                          ("--keep-segments", str(out)), {"LUCID_NATIVE": "1"})
    log(f"{name}: {run.result['rects']} updates in {len(list(out.glob('*.seg')))} segments "
        f"-> {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(n for n in WORKLOADS if n != "idle"),
                        help="comma-separated workloads (default: all but idle)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--depth", type=int, default=32)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}: choose from "
                     f"{', '.join(sorted(WORKLOADS))}")
    with scratch_context("lucid-corpus-") as ctx:
        for name in names:
            record(ctx, name, args.seconds, args.depth, ctx.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
