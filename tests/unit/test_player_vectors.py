"""The browser player's test vectors are what the Python reference makes today.

player/tools/make_vectors.py writes them from the reference decoder, player and sealing
code; the node suite (player/test) checks the TypeScript side against them. A change here
that changes the reference's output fails until the vectors are regenerated, so the two
languages cannot drift apart unnoticed.
"""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_vectors_are_up_to_date(capsys):
    tool = runpy.run_path(str(REPO / "player" / "tools" / "make_vectors.py"))
    status = tool["main"](["--check"])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "up to date" in out.out
