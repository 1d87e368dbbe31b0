"""The local kubelet's HTTPS endpoint: /containerLogs, so `kubectl logs` works on the stack.

`kubectl logs` asks the apiserver, which connects to the node's InternalIP (127.0.0.1) on
the port the Node advertises (status.daemonEndpoints.kubeletEndpoint.Port) with its
kubelet client certificate, verifying this server's certificate against the stack's CA
(kube-apiserver --kubelet-client-certificate / --kubelet-certificate-authority). Only
clients with a certificate from that CA get a TLS session, and only the common names in
`authorized` (the apiserver's) get an answer: everyone else is told 403, as a real
kubelet's webhook authorizer would for a user without nodes/log.

Served: GET /containerLogs/{namespace}/{pod}/{container} with follow, previous,
timestamps, tailLines, limitBytes, sinceSeconds and sinceTime (kubelet_logs.py says how
the local kubelet's log files answer them), and GET /healthz. Nothing else a kubelet
serves (exec, attach, port-forward, stats, metrics) is implemented.
"""

from __future__ import annotations

import dataclasses
import http.server
import logging
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from lucid_devstack.kubelet_logs import (
    ContainerView,
    LogIndex,
    LogOptions,
    LogRequestError,
    choose_run,
    lines_of,
    read_range,
    render,
    run_bounds,
)

log = logging.getLogger("lucid.kubelet")

FOLLOW_POLL = 0.2
INDEX_POLL = 0.25
HANDSHAKE_TIMEOUT = 10.0
# A follow request writes for as long as its container runs; a peer that stops reading
# for this long is given up on.
WRITE_TIMEOUT = 60.0


class ContainerLike(Protocol):
    """What the server reads of a kubelet_pod.Container (never writes)."""

    state: str
    reason: str
    last_state: dict[str, Any] | None
    run_offsets: list[int]

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path: ...


class PodLike(Protocol):
    containers: list[Any]

    @property
    def pod(self) -> dict[str, Any]: ...


class Pods(Protocol):
    """The kubelet's pod workers, by name and all of them."""

    def find(self, namespace: str, name: str) -> PodLike | None: ...

    def all(self) -> list[PodLike]: ...


def view_of(container: ContainerLike, pod: str) -> ContainerView:
    last = container.last_state or {}
    return ContainerView(
        name=container.name, pod=pod, state=container.state, reason=container.reason,
        run_offsets=tuple(container.run_offsets),
        last_terminated=bool(last.get("containerID")))


def _is_live(container: ContainerLike, index: int) -> bool:
    """The run `index` is still being written: the container runs and has not restarted."""
    return container.state == "running" and len(container.run_offsets) == index + 1


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, pods: Pods,
                 index: LogIndex, authorized: frozenset[str], stop: threading.Event) -> None:
        super().__init__(address, _Handler)
        self.context = context
        self.pods = pods
        self.index = index
        self.authorized = authorized
        self.stop = stop

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # The handshake runs in the request's own thread: a slow or silent client must
        # not hold up the accept loop.
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("kubelet server: request from %s failed", client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lucid-local-kubelet"
    server: _Server
    connection: ssl.SSLSocket

    def handle(self) -> None:
        self.connection.settimeout(HANDSHAKE_TIMEOUT)
        try:
            self.connection.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.info("kubelet server: TLS handshake with %s failed: %s",
                     self.client_address[0], exc)
            return
        self.connection.settimeout(WRITE_TIMEOUT)
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        log.info("kubelet server: %s %s", self.client_address[0], format % args)

    # --- answers -----------------------------------------------------------------------

    def _text(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _user(self) -> str:
        subject = dict(pair for rdn in (self.connection.getpeercert() or {}).get("subject", ())
                       for pair in rdn)
        return str(subject.get("commonName", "system:anonymous"))

    def do_GET(self) -> None:
        self.close_connection = True
        user = self._user()
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if url.path == "/healthz":
            self._text(200, "ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._text(404, "404 page not found")
            return
        if user not in self.server.authorized:
            self._text(403, f"Forbidden (user={user}, verb=get, resource=nodes, "
                            "subresource=log)")
            return
        namespace, pod, container = parts[1:]
        try:
            self._container_logs(namespace, pod, container,
                                 LogOptions.from_query(parse_qs(url.query,
                                                                keep_blank_values=True)))
        except LogRequestError as exc:
            self._text(exc.status, str(exc))

    def _container_logs(self, namespace: str, pod_name: str, name: str,
                        options: LogOptions) -> None:
        worker = self.server.pods.find(namespace, pod_name)
        if worker is None:
            raise LogRequestError(404, f'pod "{pod_name}" does not exist')
        if name not in {c["name"] for c in worker.pod["spec"]["containers"]}:
            raise LogRequestError(404, f'container "{name}" not found in pod "{pod_name}"')
        container = next((c for c in worker.containers if c.name == name), None)
        if container is None:  # not admitted yet
            raise LogRequestError(
                400, f'container "{name}" in pod "{pod_name}" is waiting to start: '
                     "ContainerCreating")
        view = view_of(container, pod_name)
        run = choose_run(view, options.previous)
        start, end = run_bounds(view, run)
        self._stream(container, run, start, end, options)

    # --- the log itself ----------------------------------------------------------------

    def _stream(self, container: ContainerLike, run: int, start: int, end: int | None,
                options: LogOptions) -> None:
        index, path = self.server.index, container.log_path
        size = index.observe(path)
        follow = options.follow and end is None and _is_live(container, run)
        data = read_range(path, start, size if end is None else end)
        if follow:
            data = data[:data.rfind(b"\n") + 1]  # a partial last line waits for its end
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        remaining = options.limit_bytes
        try:
            remaining = self._send(self._render(path, data, start, options), remaining)
            position = start + len(data)
            later = dataclasses.replace(options, tail_lines=None)  # tail: the backlog only
            while follow and remaining != 0 and not self.server.stop.is_set():
                if self.server.stop.wait(FOLLOW_POLL) or self._peer_gone():
                    break
                live = _is_live(container, run)
                size = index.observe(path)
                offsets = container.run_offsets
                stop_at = offsets[run + 1] if len(offsets) > run + 1 else size
                data = read_range(path, position, stop_at)
                if live:
                    data = data[:data.rfind(b"\n") + 1]
                if data:
                    remaining = self._send(self._render(path, data, position, later),
                                           remaining)
                    position += len(data)
                follow = live
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError) as exc:
            log.info("kubelet server: log stream of %s ended by the peer: %s", path, exc)

    def _render(self, path: Path, data: bytes, base: int, options: LogOptions) -> bytes:
        lines = list(lines_of(data, base))
        stamps = [self.server.index.stamp(path, offset) for offset, _ in lines]
        return render(lines, stamps, options)

    def _send(self, body: bytes, remaining: int | None) -> int | None:
        """Write one chunk, cut to `remaining` bytes (None: no limit); returns what is left."""
        if remaining is not None:
            body = body[:remaining]
            remaining -= len(body)
        if body:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        return remaining

    def _peer_gone(self) -> bool:
        """The apiserver hung up (kubectl logs -f interrupted): nothing is readable but EOF."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            self.connection.setblocking(False)
            return self.connection.recv(1) == b""
        except ssl.SSLWantReadError:
            return False
        except (ssl.SSLError, OSError):
            return True
        finally:
            self.connection.settimeout(WRITE_TIMEOUT)


class KubeletServer:
    """The HTTPS server and the thread that stamps log lines, until `stop` is set."""

    def __init__(self, pods: Pods, cert: Path, key: Path, client_ca: Path,
                 authorized: Iterable[str], stop: threading.Event,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
        self.pods = pods
        self.stop = stop
        self.index = LogIndex()
        self.httpd = _Server((host, port), context, pods, self.index, frozenset(authorized),
                             stop)
        self.threads = [
            threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5},
                             name="kubelet-server", daemon=True),
            threading.Thread(target=self._index_logs, name="kubelet-log-index", daemon=True),
        ]

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> KubeletServer:
        for thread in self.threads:
            thread.start()
        log.info("kubelet server: listening on https://127.0.0.1:%d", self.port)
        return self

    def shutdown(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _index_logs(self) -> None:
        while not self.stop.wait(INDEX_POLL):
            paths: set[Path] = set()
            for worker in self.pods.all():
                for container in list(worker.containers):
                    paths.add(container.log_path)
                    self.index.observe(container.log_path)
            self.index.keep_only(paths)
