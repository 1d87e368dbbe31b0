"""A real RDP desktop on 127.0.0.1: Xvnc drawing the screen, xrdp translating RDP to VNC.

Everything an instance writes (configs, keys, logs, X authority) lives in its
`workdir`; ports and the X display number are picked free at start, so several
Desktops can run side by side.

How credentials flow: the RDP client sends username and password in its
Client Info PDU (autologon). xrdp's `[lucid]` section says `username=ask` and
`password=ask`, and `autorun=lucid` selects it without showing xrdp's login
screen, so xrdp hands the client's credentials to libvnc. libvnc answers
Xvnc's VncAuth challenge with the password, and Xvnc checks it against the
password file generated here. A wrong password is therefore refused by Xvnc:
the client never sees the desktop, only xrdp's log window reporting
"VNC password failed". VncAuth carries no username, so the username is not
checked; `username` is only what a client is expected to send. A client that
sends no credentials gets xrdp's login screen, which forwards what is typed
there the same way.

xrdp 0.9 takes the path of its xrdp.ini on the command line (`-c`), but some
paths are compiled in: it refuses to start unless /etc/xrdp/rsakeys.ini exists
(the key for the legacy "RDP" security layer, created by the xrdp package and
read only when a client picks that layer instead of TLS), and it reads keymaps
from /etc/xrdp/km-*.ini. Both are only read, so instances can share them. In
the foreground (`-n`) xrdp writes no pid file, but it still refuses to start
while /var/run/xrdp/xrdp.pid exists, i.e. while the system's xrdp service
runs: stop that service to use Desktop on such a machine. The listen address goes
into `port=tcp://127.0.0.1:N`, as this build would otherwise listen on all
IPv6 and IPv4 addresses.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import ssl
import string
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from PIL import Image

from lucid_devstack.proc import Proc, StackError, free_port, port_open, run

XRDP_RSAKEYS = Path("/etc/xrdp/rsakeys.ini")
XRDP_SYSTEM_PID = Path("/var/run/xrdp/xrdp.pid")
XVNC_FIRST_DISPLAY = 50
XVNC_LAST_DISPLAY = 999
XVNC_START_ATTEMPTS = 5
CLOCK_TITLE = "lucid-clock"
TERM_TITLE = "lucid-xterm"
XWD_HEADER = struct.Struct(">25I")
XWD_COLOR_SIZE = 12
XWD_FILE_VERSION = 7
XWD_ZPIXMAP = 2

# X's LSBFirst byte order stores a 0x00RRGGBB pixel as B, G, R, X.
_RAW_MODES: dict[tuple[int, int], str] = {
    (32, 0): "BGRX",
    (32, 1): "XRGB",
    (24, 0): "BGR",
    (24, 1): "RGB",
    (16, 0): "BGR;16",
}


def random_password() -> str:
    """Eight letters and digits: VncAuth compares only the first eight characters."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def abstract_x_displays(unix_sockets: str) -> set[int]:
    """The displays whose X server holds its abstract socket, from /proc/net/unix's text.

    Xvnc listens on @/tmp/.X11-unix/X<n> in the network namespace as well as on the file in
    /tmp. A process with its own /tmp on a shared network (a container on the host network,
    a service with PrivateTmp) sees no file of another's display, yet an Xvnc started on it
    dies with "Cannot establish any listening sockets".
    """
    return {int(n) for n in re.findall(r" @/tmp/\.X11-unix/X(\d+)$", unix_sockets, re.M)}


def free_display(unix_sockets: Path = Path("/proc/net/unix")) -> int:
    """A display number with neither an X socket (file or abstract) nor an X lock file."""
    taken = abstract_x_displays(unix_sockets.read_text()) if unix_sockets.exists() else set()
    for number in range(XVNC_FIRST_DISPLAY, XVNC_LAST_DISPLAY + 1):
        socket_path = Path(f"/tmp/.X11-unix/X{number}")
        lock_path = Path(f"/tmp/.X{number}-lock")
        if number not in taken and not socket_path.exists() and not lock_path.exists():
            return number
    raise StackError(f"no free X display between :{XVNC_FIRST_DISPLAY} and :{XVNC_LAST_DISPLAY}")


def xwd_to_image(data: bytes) -> Image.Image:
    """Decode an XWD dump (ZPixmap, 16, 24 or 32 bits per pixel, true colour) to RGB."""
    if len(data) < XWD_HEADER.size:
        raise StackError(f"xwd output too short: {len(data)} bytes")
    (header_size, version, pixmap_format, _depth, width, height, _xoffset, byte_order,
     _bitmap_unit, _bitmap_bit_order, _bitmap_pad, bits_per_pixel, bytes_per_line,
     _visual_class, red_mask, green_mask, blue_mask, _bits_per_rgb, _colormap_entries,
     ncolors, *_window) = XWD_HEADER.unpack_from(data)
    if version != XWD_FILE_VERSION or pixmap_format != XWD_ZPIXMAP:
        raise StackError(f"unsupported xwd dump: version {version}, format {pixmap_format}")
    masks = (red_mask, green_mask, blue_mask)
    expected_masks = (0xF800, 0x07E0, 0x001F) if bits_per_pixel == 16 else (
        0xFF0000, 0x00FF00, 0x0000FF)
    mode = _RAW_MODES.get((bits_per_pixel, byte_order))
    if mode is None or masks != expected_masks:
        raise StackError(
            f"unsupported xwd pixel layout: {bits_per_pixel} bpp, byte order {byte_order}, "
            f"masks {[hex(m) for m in masks]}"
        )
    offset = header_size + ncolors * XWD_COLOR_SIZE
    needed = offset + bytes_per_line * height
    if len(data) < needed:
        raise StackError(f"xwd output truncated: {len(data)} bytes, need {needed}")
    return Image.frombuffer(
        "RGB", (width, height), data[offset:needed], "raw", mode, bytes_per_line, 1,
    ).copy()


@dataclass
class Desktop:
    """Xvnc + xrdp + a clock and a terminal, all on 127.0.0.1; see the module docstring."""

    workdir: Path
    username: str = "lucid"
    password: str = field(default_factory=random_password, repr=False)
    width: int = 1024
    height: int = 768
    depth: int = 24
    timeout: float = 60.0
    rdp_port: int = field(default=0, init=False)
    vnc_port: int = field(default=0, init=False)
    display: str = field(default="", init=False)
    logs: dict[str, Path] = field(default_factory=dict, init=False)
    _procs: dict[str, Proc] = field(default_factory=dict, init=False, repr=False)
    _windows: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # VncAuth silently ignores characters past the eighth, so a longer
        # password would let a wrong one with the right prefix in.
        if not 1 <= len(self.password) <= 8:
            raise ValueError("password must be 1 to 8 characters (VncAuth uses only 8)")
        if not all(c.isascii() and c.isprintable() for c in self.password):
            raise ValueError("password must be printable ASCII")
        if self.depth not in (16, 24):
            raise ValueError(f"depth must be 16 or 24, not {self.depth}")
        self.workdir = Path(self.workdir).resolve()

    # Paths of generated files; all inside workdir.

    @property
    def tls_cert_path(self) -> Path:
        return self.workdir / "tls" / "cert.pem"

    @property
    def tls_key_path(self) -> Path:
        return self.workdir / "tls" / "key.pem"

    @property
    def xrdp_ini_path(self) -> Path:
        return self.workdir / "xrdp" / "xrdp.ini"

    @property
    def vnc_passwd_path(self) -> Path:
        return self.workdir / "vnc" / "passwd"

    @property
    def xauthority_path(self) -> Path:
        return self.workdir / "Xauthority"

    @property
    def tls_fingerprint_sha256(self) -> str:
        """Lower-case hex SHA-256 of the DER certificate xrdp presents."""
        der = ssl.PEM_cert_to_DER_cert(self.tls_cert_path.read_text())
        return hashlib.sha256(der).hexdigest()

    @property
    def x_env(self) -> dict[str, str]:
        """Environment for X clients of this display."""
        return {"DISPLAY": self.display, "XAUTHORITY": str(self.xauthority_path)}

    # Lifecycle.

    def start(self) -> Self:
        if self._procs:
            raise StackError(f"desktop in {self.workdir} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._write_vnc_password()
            self._start_xvnc()
            self._start_clients()
            self._write_tls_cert()
            self._start_xrdp()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop clients first, then xrdp, then the X server they all hang off."""
        for name in reversed(list(self._procs)):
            self._procs[name].stop()
        self._procs.clear()
        self._windows.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def process_groups(self) -> dict[str, int]:
        """Process-group id of each component; stop() signals these whole groups."""
        return {name: proc.popen.pid for name, proc in self._procs.items() if proc.popen}

    def check_running(self) -> None:
        """Raise StackError naming the first component that has exited."""
        for name, proc in self._procs.items():
            if not proc.running:
                raise StackError(f"{name} of desktop {self.display} is not running; log {proc.log}")

    # Xvnc.

    def _write_vnc_password(self) -> None:
        self.vnc_passwd_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                ["vncpasswd", "-f"], input=self.password.encode() + b"\n",
                capture_output=True, timeout=30, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError("vncpasswd -f timed out") from exc
        if done.returncode != 0 or len(done.stdout) != 8:
            raise StackError(
                f"vncpasswd -f failed (code {done.returncode}, {len(done.stdout)} bytes): "
                f"{done.stderr.decode(errors='replace')}"
            )
        self.vnc_passwd_path.write_bytes(done.stdout)
        self.vnc_passwd_path.chmod(0o600)

    def _write_xauthority(self, display: str) -> None:
        # A private cookie keeps other local users' clients off this display.
        self.xauthority_path.unlink(missing_ok=True)
        run(["xauth", "-f", str(self.xauthority_path), "add", display, ".",
             secrets.token_hex(16)], timeout=30)

    def _start_xvnc(self) -> None:
        log = self.workdir / "logs" / "xvnc.log"
        self.logs["xvnc"] = log
        last_error: StackError | None = None
        # Another Desktop (or any X server) may grab the same display or port
        # between our check and Xvnc's bind; a fresh pick settles that.
        for _attempt in range(XVNC_START_ATTEMPTS):
            number = free_display()
            display = f":{number}"
            vnc_port = free_port()
            self._write_xauthority(display)
            log_start = log.stat().st_size if log.exists() else 0
            proc = Proc(
                name=f"Xvnc {display}",
                argv=[
                    "Xvnc", display,
                    "-geometry", f"{self.width}x{self.height}",
                    "-depth", str(self.depth),
                    "-rfbport", str(vnc_port),
                    "-localhost", "-interface", "127.0.0.1",
                    "-SecurityTypes", "VncAuth",
                    "-PasswordFile", str(self.vnc_passwd_path),
                    "-auth", str(self.xauthority_path),
                    "-nolisten", "tcp",
                    "-desktop", f"lucid {display}",
                    # Recording compares X screenshots with RDP frames, so an
                    # RDP client must not resize the screen under us; libvnc
                    # then resizes the client to the server instead.
                    "-AcceptSetDesktopSize=0",
                    # Two RDP sessions on one desktop must not kick each other.
                    "-AlwaysShared",
                ],
                log=log,
                cwd=self.workdir,
            ).start()
            self._procs["xvnc"] = proc
            x_socket = Path(f"/tmp/.X11-unix/X{number}")
            try:
                proc.wait_until(
                    lambda port=vnc_port, sock=x_socket: sock.exists() and port_open(port),
                    self.timeout, f"X socket {x_socket} and VNC listener on {vnc_port}",
                )
            except StackError as exc:
                proc.stop()
                del self._procs["xvnc"]
                last_error = exc
                with log.open("rb") as fh:
                    fh.seek(log_start)
                    text = fh.read().decode(errors="replace")
                if any(taken in text for taken in ("already active", "in use",
                                                   "already running")):
                    continue
                raise
            self.display = display
            self.vnc_port = vnc_port
            return
        raise StackError(f"Xvnc did not start in {XVNC_START_ATTEMPTS} attempts") from last_error

    # X clients.

    def _start_clients(self) -> None:
        clients = {
            "xclock": ["xclock", "-update", "1", "-title", CLOCK_TITLE,
                       "-geometry", "200x200-20+20"],
            # cat, not a shell: workloads type arbitrary text followed by
            # Return, which must never run as a command.
            "xterm": ["xterm", "-title", TERM_TITLE, "-geometry", "80x24+20+20", "-e", "cat"],
        }
        titles = {"xclock": CLOCK_TITLE, "xterm": TERM_TITLE}
        for name, argv in clients.items():
            log = self.workdir / "logs" / f"{name}.log"
            self.logs[name] = log
            self._procs[name] = Proc(name=name, argv=argv, log=log, env=self.x_env,
                                     cwd=self.workdir).start()
        for name, title in titles.items():
            found: list[str] = []

            def visible(title: str = title, found: list[str] = found) -> bool:
                window = self._search_window(title)
                if window:
                    found.append(window)
                return window is not None

            self._procs[name].wait_until(visible, self.timeout, f"window {title!r}")
            self._windows[name] = found[-1]

    def _search_window(self, title: str) -> str | None:
        try:
            done = subprocess.run(
                ["xdotool", "search", "--onlyvisible", "--name", f"^{title}$"],
                capture_output=True, text=True, timeout=10, env={**os.environ, **self.x_env},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        # xdotool exits 1 when nothing matches yet; that is the "not yet" answer.
        if done.returncode != 0:
            return None
        ids = done.stdout.split()
        return ids[0] if ids else None

    # xrdp.

    def _write_tls_cert(self) -> None:
        self.tls_cert_path.parent.mkdir(parents=True, exist_ok=True)
        run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(self.tls_key_path), "-out", str(self.tls_cert_path),
            "-days", "30", "-subj", "/CN=lucid-desktop",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ], timeout=60)
        self.tls_key_path.chmod(0o600)

    def _xrdp_ini(self, log: Path) -> str:
        # allow_channels stays true: with false, xrdp 0.9.21 answers the
        # client's channel list with none, and FreeRDP aborts the connection
        # ("requested 2 channels, got 0"). The [Channels] switches instead
        # drop each channel's data, as no chansrv runs behind libvnc.
        return f"""\
[Globals]
ini_version=1
port=tcp://127.0.0.1:{self.rdp_port}
fork=true
use_vsock=false
tcp_nodelay=true
tcp_keepalive=true
security_layer=negotiate
crypt_level=high
certificate={self.tls_cert_path}
key_file={self.tls_key_path}
ssl_protocols=TLSv1.2, TLSv1.3
autorun=lucid
require_credentials=false
allow_channels=true
allow_multimon=false
bitmap_cache=true
bitmap_compression=true
bulk_compression=true
max_bpp=32
new_cursors=true
use_fastpath=both

[Logging]
LogFile={log}
LogLevel=INFO
EnableSyslog=false
EnableConsole=false

[Channels]
rdpdr=false
rdpsnd=false
drdynvc=false
cliprdr=false
rail=false
xrdpvr=false
tcutils=false

[lucid]
name=lucid
lib=libvnc.so
ip=127.0.0.1
port={self.vnc_port}
username=ask
password=ask
"""

    def _start_xrdp(self) -> None:
        if not XRDP_RSAKEYS.exists():
            raise StackError(
                f"xrdp needs {XRDP_RSAKEYS} (its path is compiled in); "
                f"create it with: xrdp-keygen xrdp {XRDP_RSAKEYS}"
            )
        if XRDP_SYSTEM_PID.exists():
            # Checked here only for a clearer message: xrdp itself exits on it.
            raise StackError(
                f"{XRDP_SYSTEM_PID} exists, so xrdp will not start even in the foreground; "
                "stop the system xrdp service (systemctl stop xrdp) first"
            )
        # xrdp opens LogFile with O_APPEND, as Proc opens its log, so both
        # xrdp's own log lines and anything printed before logging starts
        # land in one file that StackError can quote.
        log = self.workdir / "logs" / "xrdp.log"
        self.logs["xrdp"] = log
        self.rdp_port = free_port()
        self.xrdp_ini_path.parent.mkdir(parents=True, exist_ok=True)
        self.xrdp_ini_path.write_text(self._xrdp_ini(log))
        proc = Proc(
            name="xrdp",
            argv=["xrdp", "--nodaemon", "--config", str(self.xrdp_ini_path)],
            log=log,
            cwd=self.workdir,
        ).start()
        self._procs["xrdp"] = proc
        proc.wait_port(self.rdp_port, timeout=self.timeout)

    # Screen content.

    def _xdotool(self, *args: str) -> str:
        return run(["xdotool", *args], timeout=30, env=self.x_env)

    def window(self, name: str) -> str:
        """X window id of "xterm" or "xclock"."""
        try:
            return self._windows[name]
        except KeyError:
            raise StackError(f"no window {name!r}; known: {sorted(self._windows)}") from None

    def window_geometry(self, name: str) -> tuple[int, int, int, int]:
        """(x, y, width, height) of a window, in root coordinates."""
        out = self._xdotool("getwindowgeometry", "--shell", self.window(name))
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def type_text(self, text: str, delay_ms: int = 12) -> None:
        """Type into the xterm through XTEST (xterm ignores synthetic SendEvent keys)."""
        self._xdotool("windowfocus", self.window("xterm"))
        self._xdotool("type", "--delay", str(delay_ms), "--", text)

    def press(self, *keys: str) -> None:
        """Press keys by keysym name, e.g. press("Return")."""
        self._xdotool("windowfocus", self.window("xterm"))
        self._xdotool("key", "--", *keys)

    def move_window(self, name: str, x: int, y: int) -> None:
        self._xdotool("windowmove", self.window(name), str(x), str(y))

    def run_workload(self, seconds: float) -> int:
        """Type lines and drag the clock around for about `seconds`; return the steps done.

        A step is one typed line and one clock move. On a loaded machine the xdotool
        calls slow down, so the step count says how much the desktop actually changed.
        """
        deadline = time.monotonic() + seconds
        step = 0
        while time.monotonic() < deadline:
            self.type_text(f"lucid workload line {step}")
            self.press("Return")
            x = 20 + (step * 37) % max(1, self.width - 240)
            y = 20 + (step * 53) % max(1, self.height - 240)
            self.move_window("xclock", x, y)
            step += 1
        return step

    def screenshot_rgb(self) -> Image.Image:
        """The whole X screen, pixel for pixel, as an RGB image."""
        try:
            done = subprocess.run(
                ["xwd", "-root", "-silent", "-display", self.display],
                capture_output=True, timeout=30, env={**os.environ, **self.x_env}, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"xwd on {self.display} timed out") from exc
        if done.returncode != 0:
            raise StackError(
                f"xwd on {self.display} failed with code {done.returncode}: "
                f"{done.stderr.decode(errors='replace')}"
            )
        return xwd_to_image(done.stdout)

    def screenshot(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.screenshot_rgb().save(path, format="PNG")
        return path

