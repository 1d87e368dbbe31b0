"""The RDP test desktop: TLS with its own certificate, real login, exact screenshots, clean stop."""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from lucid_devstack.desktop import Desktop
from lucid_devstack.proc import Proc, port_open

pytestmark = pytest.mark.stack

# TPKT (version 3, length 19), X.224 Connection Request, then an RDP
# Negotiation Request (type 1, length 8) asking for PROTOCOL_SSL only.
X224_CR_SSL = bytes.fromhex("03000013" "0ee00000000000" "0100080001000000")
TYPE_RDP_NEG_RSP = 0x02
PROTOCOL_SSL = 0x01
LOGIN_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    running = Desktop(tmp_path_factory.mktemp("desktop")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    """A second desktop to show an RDP client's window on, so `desktop` stays untouched."""
    running = Desktop(tmp_path_factory.mktemp("viewer")).start()
    yield running
    running.stop()


def recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def rdp_tls_certificate(port: int) -> bytes:
    """Negotiate PROTOCOL_SSL as an RDP client does; return the server's DER certificate."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(X224_CR_SSL)
        tpkt = recv_exact(sock, 4)
        assert tpkt[0] == 3, f"not a TPKT header: {tpkt.hex()}"
        x224 = recv_exact(sock, int.from_bytes(tpkt[2:4], "big") - 4)
        # X.224 Connection Confirm: LI, CC code 0xd0, dst-ref, src-ref, class (7 bytes),
        # then the RDP Negotiation Response: type, flags, length, selectedProtocol.
        assert x224[1] & 0xF0 == 0xD0, f"not a Connection Confirm: {x224.hex()}"
        negotiation = x224[7:15]
        assert negotiation[0] == TYPE_RDP_NEG_RSP, f"no negotiation response: {x224.hex()}"
        assert int.from_bytes(negotiation[4:8], "little") == PROTOCOL_SSL

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # The desktop's certificate is self-signed; the fingerprint check below pins it.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def region(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    x, y, width, height = box
    return image.crop((x, y, x + width, y + height))


def rdp_login(desktop: Desktop, viewer: Desktop, password: str, home: Path) -> str:
    """Log in with xfreerdp; return what xrdp logged once libvnc has its answer from Xvnc."""
    assert shutil.which("xfreerdp"), "xfreerdp missing: install versions.APT_PACKAGES"
    xrdp_log = desktop.logs["xrdp"]
    start = xrdp_log.stat().st_size
    home.mkdir(parents=True, exist_ok=True)
    client = Proc(
        name="xfreerdp",
        argv=["xfreerdp", f"/v:127.0.0.1:{desktop.rdp_port}", f"/u:{desktop.username}",
              f"/p:{password}", "/sec:tls", "/cert:ignore",
              f"/size:{desktop.width}x{desktop.height}", "/bpp:32", "-clipboard"],
        log=home / "xfreerdp.log",
        # xfreerdp keeps known hosts under $HOME; keep that in the test's directory.
        env={**viewer.x_env, "HOME": str(home)},
    ).start()
    logged = ""

    def answered() -> bool:
        nonlocal logged
        with xrdp_log.open("rb") as log:
            log.seek(start)
            logged = log.read().decode(errors="replace")
        accepted = "VNC password ok" in logged and "connected ok" in logged
        refused = "VNC password failed" in logged and "Error connecting to user session" in logged
        return accepted or refused

    try:
        client.wait_until(answered, LOGIN_TIMEOUT_S, "xrdp's verdict on the VNC password")
    finally:
        client.stop()
    return logged


def test_rdp_port_accepts_tcp(desktop: Desktop) -> None:
    with socket.create_connection(("127.0.0.1", desktop.rdp_port), timeout=10):
        pass


def test_tls_handshake_presents_generated_certificate(desktop: Desktop) -> None:
    der = rdp_tls_certificate(desktop.rdp_port)
    assert hashlib.sha256(der).hexdigest() == desktop.tls_fingerprint_sha256
    assert desktop.tls_cert_path.is_relative_to(desktop.workdir)


def test_screenshot_is_png_of_configured_size(desktop: Desktop, tmp_path: Path) -> None:
    path = desktop.screenshot(tmp_path / "screen.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (desktop.width, desktop.height)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert colours is not None and len(colours) > 1, "screenshot is a single colour"


def test_typing_changes_the_terminal(desktop: Desktop) -> None:
    # Compare only the terminal: the clock redraws every second on its own.
    box = desktop.window_geometry("xterm")
    before = region(desktop.screenshot_rgb(), box)
    desktop.type_text("lucid was here")
    deadline = time.monotonic() + 30
    while True:
        after = region(desktop.screenshot_rgb(), box)
        if ImageChops.difference(before, after).getbbox() is not None:
            break
        assert time.monotonic() < deadline, "typed text never appeared in the terminal"
        time.sleep(0.2)


def test_workload_moves_the_clock(desktop: Desktop) -> None:
    start = desktop.window_geometry("xclock")
    desktop.run_workload(1.0)
    assert desktop.window_geometry("xclock")[:2] != start[:2]


def test_two_desktops_run_side_by_side(desktop: Desktop, viewer: Desktop) -> None:
    assert viewer.display != desktop.display
    assert len({desktop.rdp_port, desktop.vnc_port, viewer.rdp_port, viewer.vnc_port}) == 4
    assert viewer.tls_fingerprint_sha256 != desktop.tls_fingerprint_sha256
    desktop.check_running()
    viewer.check_running()


def test_rdp_login_with_right_password_reaches_the_desktop(
    desktop: Desktop, viewer: Desktop, tmp_path: Path,
) -> None:
    logged = rdp_login(desktop, viewer, desktop.password, tmp_path / "home")
    assert "VNC password ok" in logged
    assert "VNC password failed" not in logged


def test_rdp_login_with_wrong_password_is_rejected(
    desktop: Desktop, viewer: Desktop, tmp_path: Path,
) -> None:
    # VncAuth compares eight characters, so change every one of them.
    wrong = "".join("b" if c == "a" else "a" for c in desktop.password)
    logged = rdp_login(desktop, viewer, wrong, tmp_path / "home")
    assert "VNC password failed" in logged
    assert "VNC password ok" not in logged
    desktop.check_running()


def process_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group), read from /proc (see proc(5))."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # That process ended while we looked.
        state, ppid, pgid = text.rsplit(")", 1)[1].split()[:3]
        table[int(stat.parent.name)] = (state, int(ppid), int(pgid))
    return table


def test_stop_leaves_no_process(desktop: Desktop) -> None:
    groups = set(desktop.process_groups().values())
    assert len(groups) == 4
    # Children may leave the group (xterm puts its shell in a session of its
    # own), so follow parent links as well.
    table = process_table()
    tracked = {pid for pid, (_, _, pgid) in table.items() if pgid in groups}
    grew = True
    while grew:
        children = {pid for pid, (_, ppid, _) in table.items() if ppid in tracked}
        grew = not children <= tracked
        tracked |= children
    display_number = desktop.display.lstrip(":")
    ports = (desktop.rdp_port, desktop.vnc_port)

    desktop.stop()

    after = process_table()
    # Zombies have exited already; they stay listed only until whoever
    # inherited them reaps them, which a container's PID 1 may never do.
    left = {pid: after[pid] for pid in tracked if pid in after and after[pid][0] != "Z"}
    assert not left, f"processes outlived stop(): {left}"
    ps = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True,
                        check=True, timeout=30)
    assert str(desktop.workdir) not in ps.stdout
    assert not Path(f"/tmp/.X{display_number}-lock").exists()
    assert not Path(f"/tmp/.X11-unix/X{display_number}").exists()
    assert not any(port_open(port) for port in ports)
