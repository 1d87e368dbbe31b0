"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lucid_devstack import paths
from lucid_devstack.certs import KeyPair, LocalCA, service_account_keys
from lucid_devstack.proc import Proc, StackError, free_port, http_ok

SERVICE_CIDR = "10.96.0.0/24"
NODE_NAME = "lucid-local"
# The identity the apiserver presents to kubelets (kubectl logs); the local kubelet's
# server answers only it.
KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lucid", "cluster": {
            "server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": "lucid", "context": {"cluster": "lucid", "user": user}}],
        "current-context": "lucid",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager for real garbage collection)."""

    workdir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    api_port: int = 0
    etcd_port: int = 0
    kubeconfig: Path = field(init=False)
    # Extra identities, as kubeconfig paths: the local kubelet's node identity
    # and the scheduler identity it binds pods with.
    node_kubeconfig: Path = field(init=False)
    scheduler_kubeconfig: Path = field(init=False)
    # The local kubelet's HTTPS serving certificate, and the CA that signs every
    # certificate of the stack (so also the apiserver's kubelet client certificate).
    kubelet_serving: KeyPair = field(init=False)
    ca_cert: Path = field(init=False)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def logs(self) -> dict[str, Path]:
        return {name: proc.log for name, proc in self.procs.items()}

    def start(self) -> ControlPlane:
        pki = self.workdir / "pki"
        ca = LocalCA(pki)
        self.etcd_port, etcd_peer, self.api_port = free_port(), free_port(), free_port()
        kcm_port = free_port()
        serving = ca.issue("apiserver", "kube-apiserver", server=True,
                           dns=("localhost", "kubernetes", "kubernetes.default",
                                "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"),
                           ips=("127.0.0.1", SERVICE_CIDR.replace("0/24", "1")))
        sa = service_account_keys(pki)
        admin = ca.issue("admin", "lucid-admin", organizations=("system:masters",))
        kcm = ca.issue("kcm", "system:kube-controller-manager")
        node = ca.issue("node", f"system:node:{NODE_NAME}", organizations=("system:nodes",))
        scheduler = ca.issue("scheduler", "system:kube-scheduler")
        kubelet_client = ca.issue("apiserver-kubelet-client", KUBELET_CLIENT_CN)
        self.kubelet_serving = ca.issue(
            "kubelet-serving", f"system:node:{NODE_NAME}", organizations=("system:nodes",),
            dns=(NODE_NAME, "localhost"), ips=("127.0.0.1",), server=True)
        self.ca_cert = ca.cert_path
        self.kubeconfig = write_kubeconfig(
            self.workdir / "admin.kubeconfig", self.server, ca.cert_path, admin, "admin")
        kcm_config = write_kubeconfig(
            self.workdir / "kcm.kubeconfig", self.server, ca.cert_path, kcm, "kcm")
        self.node_kubeconfig = write_kubeconfig(
            self.workdir / "node.kubeconfig", self.server, ca.cert_path, node, "node")
        self.scheduler_kubeconfig = write_kubeconfig(
            self.workdir / "scheduler.kubeconfig", self.server, ca.cert_path, scheduler,
            "scheduler")

        self._start_etcd(etcd_peer)
        apiserver = Proc("kube-apiserver", [
            str(paths.binary("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert_path}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # RBAC on, so the project's RBAC manifests are really exercised; Node
            # lets the local kubelet read only what its pods reference.
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            # kubectl logs: the apiserver calls the kubelet at the node's InternalIP
            # (127.0.0.1; its Hostname resolves nowhere), authenticates with this client
            # certificate and verifies the kubelet's serving certificate against the CA.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            f"--kubelet-certificate-authority={ca.cert_path}",
            "--profiling=false",
        ], self.workdir / "logs" / "kube-apiserver.log").start()
        self.procs["kube-apiserver"] = apiserver
        apiserver.wait_until(self._ready, timeout=120, what="/readyz ok")

        self.procs["kube-controller-manager"] = Proc("kube-controller-manager", [
            str(paths.binary("kube-controller-manager")),
            f"--kubeconfig={kcm_config}",
            f"--authentication-kubeconfig={kcm_config}",
            f"--authorization-kubeconfig={kcm_config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={ca.cert_path}",
            f"--cluster-signing-cert-file={ca.cert_path}",
            f"--cluster-signing-key-file={ca.key_path}",
            # Node lifecycle would evict pods from a node that posts no leases in time.
            "--controllers=*,-nodelifecycle,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
        ], self.workdir / "logs" / "kube-controller-manager.log").start()
        self.procs["kube-controller-manager"].wait_port(kcm_port, timeout=60)
        self._wait_default_service_account()
        return self

    def _start_etcd(self, peer_port: int) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        etcd = Proc("etcd", [
            str(paths.binary("etcd")),
            "--name=lucid",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=lucid={peer}",
            "--listen-metrics-urls=",
            # Test state is throwaway; fsync costs seconds per write burst on shared disks.
            "--unsafe-no-fsync",
        ], self.workdir / "logs" / "etcd.log").start()
        self.procs["etcd"] = etcd
        etcd.wait_until(lambda: http_ok("127.0.0.1", self.etcd_port, "/health", None),
                        timeout=60, what="/health ok")

    def _ssl_context(self) -> ssl.SSLContext:
        pki = self.workdir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def _ready(self) -> bool:
        return http_ok("127.0.0.1", self.api_port, "/readyz", self._ssl_context())

    def _wait_default_service_account(self, timeout: float = 60.0) -> None:
        """Pods can only be created once the SA controller made `default` in their namespace."""
        context = self._ssl_context()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_ok("127.0.0.1", self.api_port,
                        "/api/v1/namespaces/default/serviceaccounts/default", context):
                return
            time.sleep(0.3)
        raise StackError("kube-controller-manager never created the default ServiceAccount")

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self.procs:
                self.procs[name].stop()
