"""Run one workload on a fresh desktop, e.g. to watch it with a VNC viewer or xfreerdp."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lucid_devstack.desktop import Desktop
from lucid_devstack.workloads import WORKLOADS, make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lucid_devstack.workloads")
    parser.add_argument("workload", choices=list(WORKLOADS))
    parser.add_argument("--seconds", type=float, default=None,
                        help="how long to drive it (default: the benchmark's duration)")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="save a screenshot of the desktop at the end")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix=f"lucid-workload-{args.workload}-"))
    with Desktop(workdir / "desktop") as desktop:
        print(f"desktop {desktop.display}, RDP 127.0.0.1:{desktop.rdp_port}, "
              f"VNC 127.0.0.1:{desktop.vnc_port}; logs in {workdir}", flush=True)
        workload = make(args.workload, desktop, workdir / args.workload)
        workload.start()
        try:
            seconds = args.seconds if args.seconds is not None else workload.default_seconds
            result = workload.drive(seconds)
            if args.screenshot is not None:
                desktop.screenshot(args.screenshot)
        finally:
            workload.stop()
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
