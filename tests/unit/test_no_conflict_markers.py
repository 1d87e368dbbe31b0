"""A merge that left conflict markers in a tracked file fails here, not in a reader's eyes."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)


def test_no_tracked_file_holds_a_merge_conflict_marker():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True, timeout=30).stdout.decode().split("\0")
    marked = []
    for name in filter(None, files):
        path = REPO / name
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files (images, bundles) and files deleted in the work tree
        if MARKER.search(text):
            marked.append(name)
    assert not marked, f"merge conflict markers in: {', '.join(marked)}"
