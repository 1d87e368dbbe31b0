"""The fault relay proves itself: bytes pass intact, and the kernel really delays and drops.

No cluster is needed, only root, nft and iptables-legacy (versions.APT_PACKAGES);
the target is an echo server in this process.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucid_devstack.netfault import NETNS_DIR, NetFault

pytestmark = pytest.mark.stack

IO_TIMEOUT_S = 60.0


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A TCP echo server in the host namespace."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(IO_TIMEOUT_S)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at teardown, or no client within the timeout
                return
            threading.Thread(target=_echo_back, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()
    server.close()


def _echo_back(conn: socket.socket) -> None:
    conn.settimeout(IO_TIMEOUT_S)
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


@pytest.fixture
def fault(echo: tuple[str, int], tmp_path: Path) -> Iterator[NetFault]:
    with NetFault(echo, tmp_path) as running:
        yield running


def _connect(fault: NetFault) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", fault.port), timeout=IO_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _round_trips(fault: NetFault, count: int = 9) -> float:
    """Median seconds for one byte to go to the echo server and back."""
    with _connect(fault) as sock:
        times = []
        for _ in range(count):
            began = time.monotonic()
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            times.append(time.monotonic() - began)
    return statistics.median(times)


def _echoed(fault: NetFault, payload: bytes) -> tuple[bytes, float]:
    """Send payload through the relay to the echo server; what came back, and how long it took."""
    received = bytearray()
    with _connect(fault) as sock:

        def read() -> None:
            while len(received) < len(payload) and (data := sock.recv(1 << 16)):
                received.extend(data)

        reader = threading.Thread(target=read)
        began = time.monotonic()
        reader.start()
        sock.sendall(payload)
        reader.join(IO_TIMEOUT_S)
        took = time.monotonic() - began
    assert not reader.is_alive(), f"echo incomplete after {IO_TIMEOUT_S}s: {len(received)} bytes"
    return bytes(received), took


def test_bytes_pass_intact_and_the_namespace_is_private(fault: NetFault):
    payload = os.urandom(1 << 20)
    back, _ = _echoed(fault, payload)
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    assert (NETNS_DIR / fault.name).exists()
    host_rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                                timeout=15, check=True).stdout
    assert "lucid_netfault" not in host_rules  # the impairment lives in the namespace only
    assert fault.counts().packets > 0  # and the bytes crossed its loopback


def test_delay_is_applied_by_the_kernel_to_every_packet_both_ways(fault: NetFault):
    clean = _round_trips(fault)
    fault.impair(delay_ms=100)
    delayed = _round_trips(fault)
    # One-way 100 ms on each crossing of the namespace's loopback: 200 ms per round trip.
    assert 0.2 <= delayed < 0.2 + 0.1 + clean, (clean, delayed)
    # The kernel's own TCP RTT estimate sees it: the packets waited, not the relay's bytes.
    with _connect(fault) as sock:
        sock.sendall(b"y")
        assert sock.recv(1) == b"y"
        sockets = subprocess.run(["ip", "netns", "exec", fault.name, "ss", "-tin"],
                                 capture_output=True, text=True, timeout=15, check=True).stdout
    rtts = [float(m) for m in re.findall(r"\brtt:([\d.]+)/", sockets)]
    assert rtts and max(rtts) >= 150, sockets
    assert fault.counts().delayed > 0
    fault.clear()
    assert _round_trips(fault) < 0.1


def test_loss_drops_real_packets_and_tcp_still_delivers_every_byte(fault: NetFault):
    fault.impair(loss_percent=10)
    payload = os.urandom(512 << 10)
    back, took = _echoed(fault, payload)
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    counts = fault.counts()
    print(f"\n10% loss: {counts}, 512 KiB echoed in {took:.2f}s")
    # Drawn per packet: over about a thousand packets the ratio stays well inside these bounds.
    assert 0.04 <= counts.dropped / counts.packets <= 0.2, counts
    # Lost in flight, not refused at the sender: TCP found out and sent them again.
    assert counts.retransmitted >= counts.dropped / 4, counts


def test_rate_limit_slows_a_transfer(fault: NetFault):
    payload = os.urandom(512 << 10)
    _, clean = _echoed(fault, payload)
    fault.impair(rate_kbit=8000)
    back, limited = _echoed(fault, payload)
    assert len(back) == len(payload)
    assert back == payload
    # 512 KiB each way at 8 Mbit/s: at least about half a second.
    assert limited >= 0.45 and limited > 3 * clean, (clean, limited)


def test_stop_removes_the_namespace_and_the_relay_even_after_a_failure(
        echo: tuple[str, int], tmp_path: Path):
    fault = NetFault(echo, tmp_path)
    with pytest.raises(RuntimeError, match="a failing test"), fault:
        fault.impair(loss_percent=10, delay_ms=50)
        raise RuntimeError("a failing test")
    assert not (NETNS_DIR / fault.name).exists()
    assert fault.proc is not None and fault.proc.popen is not None
    assert fault.proc.popen.poll() is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=15, check=True).stdout
    assert fault.name not in listed
