"""Latency and packet loss for one TCP target, applied by the kernel in a private network namespace.

This kernel has no netem (CONFIG_NET_SCH_NETEM is not set), so the impairments
are built from what it does have, all inside a namespace the fault creates
(nothing on the host's own interfaces changes):

- **loss**: an nftables rule where packets arrive on the namespace's loopback
  (prerouting), `numgen random mod 100 < P counter drop`, drops each packet
  with probability P percent (data, ACKs and handshakes alike) after its
  sender sent it, so TCP really detects the loss and retransmits;
- **delay**: an iptables-legacy NFQUEUE rule, also where packets arrive, hands
  every TCP packet to the relay process, which holds it for the delay and then
  accepts it (batched verdicts, in arrival order). The packet itself waits in
  the kernel, so the sockets' own RTT is twice the delay (one crossing each
  way). nft's own `queue` needs CONFIG_NFT_QUEUE, also not set here, hence
  iptables-legacy's xt target;
- **rate** (optional): a TBF qdisc on the namespace's loopback (egress).

The namespace's loopback gets an Ethernet MTU (1500) and no segmentation
offload, so each of these acts on wire-sized segments.

Traffic gets there through a relay: it listens on 127.0.0.1 in the host
namespace (`port`), and for each connection opens a socket created inside the
namespace to a listener also inside it, whose accepted side is relayed to the
real target. Every byte between client and target therefore crosses the
impaired loopback once in each direction.

`NetFault` is used from the tests; `python -m lucid_devstack.netfault relay`
is the relay process it starts.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lucid_devstack.proc import Proc, StackError, run

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")
COMMAND_TIMEOUT_S = 15.0
# A relayed connection with no byte either way for this long is closed, like a
# middlebox's idle timeout; well beyond any keep-alive in the tests.
IDLE_TIMEOUT_S = 600.0
# Long enough for SYN retransmissions (1 s, 3 s, 7 s) under heavy loss.
CONNECT_TIMEOUT_S = 30.0
PUMP_BYTES = 65536
LINK_MTU = 1500
RELAYED = "relaying connection"
TBF_BURST_BYTES = 32768
NFT_TABLE = "lucid_netfault"
QUEUE_NUM = 0

# Netlink (linux/netlink.h, linux/netfilter/nfnetlink_queue.h).
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLA_TYPE_MASK = 0x3FFF
QUEUE_MAXLEN = 16384


# --- pure parts: netlink messages, the delay line, rule text --------------------------------

def nlattr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nfqueue_message(msg_type: int, queue: int, attrs: list[bytes], seq: int,
                    flags: int = NLM_F_REQUEST) -> bytes:
    """An nfnetlink_queue message: nlmsghdr, nfgenmsg (queue number big-endian), attributes."""
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                         flags, seq, 0)
    return header + body


def bind_message(queue: int, seq: int) -> bytes:
    command = struct.pack(">BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)
    return nfqueue_message(NFQNL_MSG_CONFIG, queue, [nlattr(NFQA_CFG_CMD, command)], seq,
                           NLM_F_REQUEST | NLM_F_ACK)


def params_message(queue: int, seq: int) -> bytes:
    """Copy metadata only (the payload is never needed) and allow a long queue."""
    attrs = [nlattr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)),
             nlattr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN))]
    return nfqueue_message(NFQNL_MSG_CONFIG, queue, attrs, seq, NLM_F_REQUEST | NLM_F_ACK)


def accept_up_to_message(queue: int, packet_id: int, seq: int) -> bytes:
    """A batch verdict: accept every queued packet whose id is at most packet_id."""
    verdict = struct.pack(">II", NF_ACCEPT, packet_id)
    return nfqueue_message(NFQNL_MSG_VERDICT_BATCH, queue,
                           [nlattr(NFQA_VERDICT_HDR, verdict)], seq)


@dataclass(frozen=True)
class NetlinkEvent:
    """What one netlink message in a receive buffer says: a queued packet or an ack/error."""

    packet_id: int | None = None
    error: int | None = None  # 0 is an ack; otherwise a positive errno


def parse_netlink(buffer: bytes) -> list[NetlinkEvent]:
    """The queued packets' ids and the acks/errors in one receive buffer."""
    events = []
    offset = 0
    while offset + 16 <= len(buffer):
        length, msg_type = struct.unpack_from("=IH", buffer, offset)
        if length < 16 or offset + length > len(buffer):
            raise ValueError(f"truncated netlink message at {offset}: length {length}")
        body = buffer[offset + 16:offset + length]
        if msg_type == NLMSG_ERROR:
            events.append(NetlinkEvent(error=-struct.unpack_from("=i", body)[0]))
        elif msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            events.append(NetlinkEvent(packet_id=_packet_id(body[4:])))
        offset += (length + 3) & ~3
    return events


def _packet_id(attrs: bytes) -> int:
    offset = 0
    while offset + 4 <= len(attrs):
        length, kind = struct.unpack_from("=HH", attrs, offset)
        if length < 4:
            break
        if kind & NLA_TYPE_MASK == NFQA_PACKET_HDR:
            return int(struct.unpack_from(">I", attrs, offset + 4)[0])
        offset += (length + 3) & ~3
    raise ValueError("queued packet without NFQA_PACKET_HDR")


class DelayLine:
    """Packets in arrival order, each released `delay` seconds after it arrived.

    Releasing strictly in order keeps TCP free of reordering even when the
    delay is lowered while packets wait (a later packet never overtakes).
    """

    def __init__(self) -> None:
        self._waiting: collections.deque[tuple[float, int]] = collections.deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, packet_id: int, now: float, delay: float) -> None:
        self._waiting.append((now + delay, packet_id))

    def due(self, now: float) -> int | None:
        """Pop every packet due by `now`; the highest id among them (for a batch verdict)."""
        last = None
        while self._waiting and self._waiting[0][0] <= now:
            last = self._waiting.popleft()[1]
        return last

    def next_due(self) -> float | None:
        return self._waiting[0][0] if self._waiting else None


def loss_rules(loss_percent: int) -> str:
    """nft script: count every packet arriving on the namespace's loopback, drop P% of them.

    On arrival, not on output: a packet dropped in the output hook fails the
    sender's transmit call, so TCP knows at once and simply sends again (a
    local drop); dropped after it left, it is lost in flight, found only by
    missing ACKs or the retransmission timer, as on a real link.
    """
    if not 0 <= loss_percent <= 100:
        raise ValueError(f"loss must be 0..100 percent, not {loss_percent}")
    drop = (f"    iif lo numgen random mod 100 < {loss_percent} counter drop\n"
            if loss_percent else "")
    return (f"table inet {NFT_TABLE} {{\n"
            "  chain arrive {\n"
            "    type filter hook prerouting priority -200; policy accept;\n"
            "    iif lo counter\n"
            f"{drop}"
            "  }\n"
            "}\n")


def counters(ruleset: dict) -> list[int]:
    """Packet counts of the counter rules in `nft -j list table` output, in rule order."""
    found = []
    for item in ruleset.get("nftables", []):
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                found.append(int(expr["counter"]["packets"]))
    return found


def tcp_retransmits(snmp: str) -> int:
    """RetransSegs from /proc/net/snmp (a header line of names, then one of values)."""
    tcp = [line.split()[1:] for line in snmp.splitlines() if line.startswith("Tcp:")]
    if len(tcp) != 2:
        raise ValueError("no Tcp: lines in /proc/net/snmp")
    return int(dict(zip(tcp[0], tcp[1], strict=True))["RetransSegs"])


def tbf_args(rate_kbit: int) -> list[str]:
    """A TBF qdisc of `rate_kbit`; its bucket holds a couple of dozen MTU-sized packets."""
    if rate_kbit <= 0:
        raise ValueError(f"rate must be positive, not {rate_kbit} kbit/s")
    return ["tbf", "rate", f"{rate_kbit}kbit", "burst", str(TBF_BURST_BYTES), "latency", "2s"]


# --- the fault, as the tests drive it ----------------------------------------------------------

@dataclass
class Counts:
    """What the namespace's kernel counted: packets arriving on its loopback and their fate
    since the last impair(), and TCP segments it retransmitted since it was created."""

    packets: int
    dropped: int
    delayed: int
    retransmitted: int


@dataclass
class NetFault:
    """A relay to `target` through a private network namespace whose loopback is impaired."""

    target: tuple[str, int]
    workdir: Path
    name: str = field(default_factory=lambda: f"lucid-nf-{uuid.uuid4().hex[:10]}")
    port: int = field(default=0, init=False)
    proc: Proc | None = field(default=None, init=False)
    _made: bool = field(default=False, init=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def _delay_file(self) -> Path:
        return self.workdir / f"{self.name}.delay_ms"

    def start(self) -> NetFault:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            run(["ip", "netns", "add", self.name], COMMAND_TIMEOUT_S)
            self._made = True
            # An Ethernet-sized MTU and no segmentation offload: each drop or delay
            # acts on one wire-sized segment, as on a real link, not on a 64 KiB
            # super-packet (and TBF never meets a packet bigger than its bucket).
            run(["ip", "-n", self.name, "link", "set", "lo", "mtu", str(LINK_MTU),
                 "gso_max_size", str(LINK_MTU), "gso_max_segs", "1", "up"], COMMAND_TIMEOUT_S)
            self._nft(loss_rules(0))
            self._set_delay_ms(0)
            port_file = self.workdir / f"{self.name}.port"
            self.proc = Proc(f"netfault-{self.name}", [
                sys.executable, "-m", "lucid_devstack.netfault", "relay",
                "--netns", self.name, "--target", f"{self.target[0]}:{self.target[1]}",
                "--port-file", str(port_file), "--delay-file", str(self._delay_file),
            ], self.log).start()
            self.proc.wait_until(port_file.exists, 30, "the fault relay's port")
            self.port = int(port_file.read_text())
        except BaseException:
            self.stop()
            raise
        return self

    def impair(self, loss_percent: int = 0, delay_ms: int = 0, rate_kbit: int = 0) -> None:
        """Replace the impairments: packet loss, one-way delay per packet, a rate limit.

        Every counter in counts() starts again from zero.
        """
        # One nft transaction: the old table goes and the new one comes at once.
        self._nft(f"delete table inet {NFT_TABLE}\n" + loss_rules(loss_percent))
        if _succeeds(self._queue_rule("-C")):
            run(self._queue_rule("-D"), COMMAND_TIMEOUT_S)
        # The relay holds packets for the new delay before the rule sends it any.
        self._set_delay_ms(delay_ms)
        if delay_ms:
            run(self._queue_rule("-A"), COMMAND_TIMEOUT_S)
        if rate_kbit:
            run(["tc", "-n", self.name, "qdisc", "replace", "dev", "lo", "root",
                 *tbf_args(rate_kbit)], COMMAND_TIMEOUT_S)
        elif self._has_tbf():
            run(["tc", "-n", self.name, "qdisc", "del", "dev", "lo", "root"], COMMAND_TIMEOUT_S)

    def clear(self) -> None:
        """Lift every impairment; the relay keeps carrying the open connections."""
        self.impair()

    def counts(self) -> Counts:
        listed = json.loads(run(["ip", "netns", "exec", self.name, "nft", "-j", "list", "table",
                                 "inet", NFT_TABLE], COMMAND_TIMEOUT_S))
        found = counters(listed)
        return Counts(packets=found[0], dropped=sum(found[1:]), delayed=self._queued_packets(),
                      retransmitted=self._retransmitted())

    def connections(self) -> int:
        """Connections the relay carried end to end so far (it logs one line for each)."""
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count(RELAYED)

    def stop(self) -> None:
        """Stop the relay and delete the namespace (its rules and qdisc go with it)."""
        errors = []
        if self.proc is not None:
            self.proc.stop(grace=5)
        if self._made:
            try:
                run(["ip", "netns", "del", self.name], COMMAND_TIMEOUT_S)
                self._made = False
            except StackError as exc:
                errors.append(str(exc))
        if errors:
            raise StackError("; ".join(errors))

    def __enter__(self) -> NetFault:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _nft(self, script: str) -> None:
        _run_input(["ip", "netns", "exec", self.name, "nft", "-f", "-"], script)

    def _queue_rule(self, action: str) -> list[str]:
        """iptables-legacy argv to check (-C), add (-A) or delete (-D) the delay's queue rule."""
        return ["ip", "netns", "exec", self.name, "iptables-legacy", "-w", "5", "-t", "mangle",
                action, "PREROUTING", "-i", "lo", "-p", "tcp", "-j", "NFQUEUE",
                "--queue-num", str(QUEUE_NUM)]

    def _queued_packets(self) -> int:
        listed = run(["ip", "netns", "exec", self.name, "iptables-legacy", "-w", "5", "-t",
                      "mangle", "-L", "PREROUTING", "-v", "-x", "-n"], COMMAND_TIMEOUT_S)
        return sum(int(line.split()[0]) for line in listed.splitlines()
                   if "NFQUEUE" in line and line.split()[0].isdigit())

    def _retransmitted(self) -> int:
        # /proc/net is the reader's namespace's: read inside, it counts that namespace's TCP.
        snmp = run(["ip", "netns", "exec", self.name, "cat", "/proc/net/snmp"],
                   COMMAND_TIMEOUT_S)
        return tcp_retransmits(snmp)

    def _has_tbf(self) -> bool:
        shown = run(["tc", "-n", self.name, "qdisc", "show", "dev", "lo"], COMMAND_TIMEOUT_S)
        return "tbf" in shown

    def _set_delay_ms(self, delay_ms: int) -> None:
        if delay_ms < 0:
            raise ValueError(f"delay must not be negative, not {delay_ms} ms")
        staged = self._delay_file.with_suffix(".tmp")
        staged.write_text(str(delay_ms))
        staged.replace(self._delay_file)  # the relay never reads a half-written value


def _run_input(argv: list[str], text: str) -> None:
    done = subprocess.run(argv, input=text, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S)
    if done.returncode != 0:
        raise StackError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")


def _succeeds(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT_S).returncode == 0


# --- the relay process ---------------------------------------------------------------------------

def enter_netns(name: str) -> None:
    """Move the calling thread into the named network namespace (setns is per thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into network namespace {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class Relay:
    """Host 127.0.0.1:port → (namespace loopback, impaired) → target, one thread per direction."""

    def __init__(self, netns: str, target: tuple[str, int], delay_file: Path) -> None:
        self.target = target
        self.delay_file = delay_file
        # Sockets keep the namespace they were created in, so one thread that
        # lives in the namespace creates them all; the others stay in the host's.
        self.inside = ThreadPoolExecutor(1, thread_name_prefix="in-netns",
                                         initializer=enter_netns, initargs=(netns,))
        self.outer_listener = _listener()
        self.inner_listener = self._in_netns(_listener)
        self.inner_address = self.inner_listener.getsockname()
        self.accepted: dict[int, socket.socket] = {}
        self.accepted_ready = threading.Condition()
        self.queue = DelayQueue(self._in_netns(_netlink_socket), delay_file)
        self.queue.start()

    def _in_netns(self, make: Callable[[], socket.socket]) -> socket.socket:
        return self.inside.submit(make).result(timeout=COMMAND_TIMEOUT_S)

    @property
    def port(self) -> int:
        return int(self.outer_listener.getsockname()[1])

    def serve(self) -> None:
        """Relay until stopped by a signal (or the parent's exit): the accept waits that long."""
        threading.Thread(target=self._accept_inner, name="accept-inner", daemon=True).start()
        while True:
            client, _ = self.outer_listener.accept()
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _accept_inner(self) -> None:
        while True:
            inner, peer = self.inner_listener.accept()
            with self.accepted_ready:
                self.accepted[peer[1]] = inner
                self.accepted_ready.notify_all()

    def _connect(self, client: socket.socket) -> None:
        opened: list[socket.socket] = [client]
        try:
            outer = self._in_netns(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            opened.append(outer)
            outer.settimeout(CONNECT_TIMEOUT_S)
            outer.connect(self.inner_address)
            port = outer.getsockname()[1]
            with self.accepted_ready:
                if not self.accepted_ready.wait_for(lambda: port in self.accepted,
                                                    CONNECT_TIMEOUT_S):
                    raise TimeoutError("the namespace's listener never accepted")
                inner = self.accepted.pop(port)
            opened.append(inner)
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
            opened.append(upstream)
        except OSError as exc:
            _say(f"connection through the namespace failed: {exc!r}")
            for sock in opened:
                sock.close()
            return
        _say(f"{RELAYED} via namespace port {port}")
        for sock in opened:
            sock.settimeout(IDLE_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for a, b in ((client, outer), (inner, upstream)):
            pair = _Pair(a, b)
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=pair.pump, args=(src, dst), daemon=True).start()


class _Pair:
    """Two sockets relayed both ways; closed once both directions ended."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.sockets = (a, b)
        self.running = 2
        self.lock = threading.Lock()

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(PUMP_BYTES):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on, like TCP itself would
        except OSError as exc:
            _say(f"relay direction ended: {exc!r}")
            for sock in self.sockets:
                # Wakes the other direction's blocked recv (close() would not);
                # a socket the peer already shut down answers ENOTCONN, which is fine.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with self.lock:
            self.running -= 1
            done = self.running == 0
        if done:
            for sock in self.sockets:
                sock.close()


def _netlink_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    # A burst beyond the buffer costs packets (TCP resends them), not the reader.
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    return sock


class DelayQueue:
    """Holds every packet the NFQUEUE rule hands over for the current delay, then accepts it."""

    def __init__(self, sock: socket.socket, delay_file: Path) -> None:
        self.sock = sock
        self.delay_file = delay_file
        self.delay = 0.0
        self.line = DelayLine()
        self.changed = threading.Condition()
        self.seq = 0

    def start(self) -> None:
        self.sock.settimeout(COMMAND_TIMEOUT_S)
        for message in (bind_message(QUEUE_NUM, 1), params_message(QUEUE_NUM, 2)):
            self.sock.send(message)
            for event in parse_netlink(self.sock.recv(65536)):
                if event.error:
                    raise OSError(event.error, f"nfqueue config: {os.strerror(event.error)}")
        self.sock.settimeout(None)  # the reader waits for packets for as long as the relay runs
        threading.Thread(target=self._read, name="nfqueue-read", daemon=True).start()
        threading.Thread(target=self._release, name="nfqueue-release", daemon=True).start()

    def _read(self) -> None:
        seen: tuple[int, int] | None = None
        while True:
            events = parse_netlink(self.sock.recv(1 << 20))
            now = time.monotonic()
            # Checked per batch, so a delay set before impair() returned applies to
            # every packet queued after it (impair() writes the file, then adds the rule).
            stat = self.delay_file.stat()
            if (stat.st_ino, stat.st_mtime_ns) != seen:
                seen = (stat.st_ino, stat.st_mtime_ns)
                self.delay = int(self.delay_file.read_text()) / 1000
            with self.changed:
                for event in events:
                    if event.packet_id is not None:
                        self.line.add(event.packet_id, now, self.delay)
                    elif event.error:
                        _say(f"nfqueue error: {os.strerror(event.error)}")
                self.changed.notify()

    def _release(self) -> None:
        while True:
            now = time.monotonic()
            with self.changed:
                last = self.line.due(now)
                if last is None:
                    due = self.line.next_due()
                    wait = 0.2 if due is None else min(0.2, max(0.0, due - now))
                    self.changed.wait(wait)
                    continue
            self.seq += 1
            self.sock.send(accept_up_to_message(QUEUE_NUM, last, self.seq))


def _watch_parent(parent: int) -> None:
    """Exit when the process that started the relay is gone: nothing else would stop it."""
    while os.getppid() == parent:
        time.sleep(1)
    _say("parent gone: exiting")
    os._exit(3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lucid_devstack.netfault")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="relay TCP to a target through a namespace")
    relay.add_argument("--netns", required=True)
    relay.add_argument("--target", required=True, help="host:port in the host namespace")
    relay.add_argument("--port-file", type=Path, required=True)
    relay.add_argument("--delay-file", type=Path, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    running = Relay(args.netns, (host, int(port)), args.delay_file)
    staged = args.port_file.with_suffix(".tmp")
    staged.write_text(str(running.port))
    staged.replace(args.port_file)
    _say(f"relay up: 127.0.0.1:{running.port} -> namespace {args.netns} -> {args.target}")
    running.serve()


if __name__ == "__main__":
    main()
