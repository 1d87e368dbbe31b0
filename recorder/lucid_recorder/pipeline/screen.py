"""Does the recorder see the remote session, or only the server's own screen? (pure)

xrdp completes the RDP connection whatever the password and never confirms a logon
at the protocol level: a wrong password shows only on xrdp's own screen. What the
recorder can observe is how that screen differs from a session's:

- xrdp paints its own screen in full as soon as the client is connected (its
  background, then the login box or the log window with "VNC password failed");
- once its backend (Xvnc, xorgxrdp) accepted the login, the session's first frame
  arrives, and that one covers the whole desktop again.

So, after each connection, the session's screen counts as shown as soon as one of:

1. the server checked the credentials before the session (NLA / CredSSP);
2. the server confirmed the logon (Save Session Info PDU, as Windows sends);
3. screen updates have covered the whole desktop twice: the server's own first
   screen, and after it the session's first full frame.

If none of these happened within `timeout_ns` of connecting, the screen is Missing
(the session reports NoScreenUpdates). An idle desktop, even one without a clock,
is safe: its first full frame arrived right after logon, and nothing later is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lucid_common import contract

# Coverage needs one byte per pixel (64 MiB at the largest desktop, 8192 x 8192), held
# only until the session's screen is shown.
_FULL_PAINTS_NEEDED = 2


@dataclass
class ScreenWatch:
    """Tracks one capture's connections against the rule in the module docstring."""

    timeout_ns: int  # 0 turns the check off
    state: str = contract.SCREEN_WAITING
    connected_ns: int | None = None
    updates_since_connect: int = 0
    full_paints: int = 0
    _width: int = 0
    _height: int = 0
    _covered: bytearray = field(default_factory=bytearray, repr=False)
    _uncovered: int = 0

    def connected(self, t_ns: int, width: int, height: int,
                  credentials_checked: bool = False) -> None:
        """A new connection: the rule starts over."""
        self.connected_ns = t_ns
        self.updates_since_connect = 0
        self.full_paints = 0
        if not self.timeout_ns:
            self.state = contract.SCREEN_UNCHECKED
            self._forget()
        elif credentials_checked:
            self.state = contract.SCREEN_SHOWN
            self._forget()
        else:
            self.state = contract.SCREEN_WAITING
            self._reset(width, height)

    def disconnected(self) -> None:
        self.connected_ns = None
        if self.state != contract.SCREEN_UNCHECKED:
            self.state = contract.SCREEN_WAITING
        self._forget()

    def logon_confirmed(self) -> None:
        if self._watching():
            self._shown()

    def resize(self, width: int, height: int) -> None:
        """A new desktop size: a paint in progress no longer counts; finished ones do."""
        if self._watching():
            self._reset(width, height)

    def rect(self, x: int, y: int, w: int, h: int) -> None:
        self.updates_since_connect += 1
        if not self._watching():
            return
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self._width, x + w), min(self._height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        span = x1 - x0
        ones = b"\x01" * span
        covered = self._covered
        for row in range(y0, y1):
            start = row * self._width + x0
            fresh = covered.count(0, start, start + span)
            if fresh:
                covered[start:start + span] = ones
                self._uncovered -= fresh
        if self._uncovered == 0:
            self.full_paints += 1
            if self.full_paints >= _FULL_PAINTS_NEEDED:
                self._shown()
            else:
                self._reset(self._width, self._height)

    def poll(self, now_ns: int) -> str:
        """The state at `now_ns`: Waiting turns Missing once the timeout has passed."""
        if (self.state == contract.SCREEN_WAITING and self.connected_ns is not None
                and now_ns - self.connected_ns >= self.timeout_ns):
            self.state = contract.SCREEN_MISSING
        return self.state

    def seconds_left(self, now_ns: int) -> float | None:
        """Until the timeout, while it can still pass; None otherwise."""
        if self.state != contract.SCREEN_WAITING or self.connected_ns is None:
            return None
        return max(0.0, (self.connected_ns + self.timeout_ns - now_ns) / 1e9)

    def _watching(self) -> bool:
        return self.state in (contract.SCREEN_WAITING, contract.SCREEN_MISSING) and \
            self.connected_ns is not None

    def _shown(self) -> None:
        self.state = contract.SCREEN_SHOWN
        self._forget()

    def _reset(self, width: int, height: int) -> None:
        self._width, self._height = max(0, width), max(0, height)
        self._covered = bytearray(self._width * self._height)
        self._uncovered = len(self._covered)

    def _forget(self) -> None:
        self._covered = bytearray()
        self._uncovered = 0
