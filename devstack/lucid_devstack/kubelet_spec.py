"""What a pod spec asks of the local kubelet: env, volumes, identity, and the wrapper.

A container runs as `unshare --mount` + a root shell script (stage 1) that bind-mounts
the pod's volumes, hides the kubelet's own credentials and makes / read-only if asked,
then `setpriv` drops to the pod's user and a second tiny shell (stage 2) loads the
container's environment from stdin and execs the command. The environment travels on
stdin rather than in argv (visible in `ps`) or in the root stages' environment (where
LD_PRELOAD and friends would run pod-chosen code with the kubelet's privileges).
"""

from __future__ import annotations

import base64
import calendar
import json
import logging
import math
import os
import pwd
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from lucid_devstack.kubelet_api import Api, ApiError
from lucid_devstack.proc import StackError

log = logging.getLogger("lucid.kubelet")

CONFIG_ERROR = "CreateContainerConfigError"
CREATING = "ContainerCreating"
HOST_IP = "127.0.0.1"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# containerd's default capability set for root containers.
DEFAULT_CAPS = ("chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid",
                "setuid", "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill",
                "audit_write")
# An image named under this prefix runs as a plain process on the host (process mode), the
# fast path for tests whose container is a stand-in that exists in no image; any other
# image runs as an OCI container (lucid_devstack.kubelet_podman).
PROCESS_IMAGE_PREFIX = "process.local/"
SUPPORTED_VOLUMES = ("secret", "configMap", "emptyDir", "projected", "downwardAPI", "hostPath")
_SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAP_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """The container cannot start yet; shown as its waiting reason and retried."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Unsupported(Exception):
    """The pod needs something the local kubelet does not implement: it fails for good."""


@dataclass(frozen=True)
class Tools:
    unshare: str
    mount: str
    setpriv: str
    nsenter: str
    sh: str = "/bin/sh"

    @classmethod
    def find(cls) -> Tools:
        found = {name: shutil.which(name, path=SYSTEM_PATH)
                 for name in ("unshare", "mount", "setpriv", "nsenter")}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise StackError(f"local kubelet needs util-linux tools: {', '.join(missing)}")
        return cls(**{name: str(path) for name, path in found.items()})


def pod_label(pod: Mapping[str, Any]) -> str:
    """The real kubelet's format.Pod: name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta['uid']})"


def check_supported(pod: Mapping[str, Any]) -> None:
    """Refuse, once and loudly, what this kubelet cannot do rather than half-doing it."""
    spec = pod["spec"]
    if spec.get("initContainers"):
        raise Unsupported("init containers are not supported by the local kubelet")
    for volume in spec.get("volumes") or []:
        kinds = [k for k in volume if k != "name"]
        if not any(k in SUPPORTED_VOLUMES for k in kinds):
            raise Unsupported(f"volume {volume['name']!r} of type {'/'.join(kinds)} is not "
                              f"supported by the local kubelet ({', '.join(SUPPORTED_VOLUMES)})")
        if "emptyDir" in volume:
            empty_dir_limit(volume)  # an unparsable sizeLimit fails the pod here
        for source in (volume.get("projected") or {}).get("sources") or []:
            for kind in source:
                if kind not in ("secret", "configMap", "downwardAPI", "serviceAccountToken"):
                    raise Unsupported(f"projected source {kind} in volume {volume['name']!r} "
                                      "is not supported by the local kubelet")
    for container in spec["containers"]:
        if str(container.get("image", "")).startswith(PROCESS_IMAGE_PREFIX) and \
                not container.get("command"):
            raise Unsupported(f"container {container['name']!r} has no command: an image "
                              f"under {PROCESS_IMAGE_PREFIX} runs as a host process, which "
                              "has no image entrypoint to fall back on")
        for probe_kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(probe_kind)
            if probe and not any(k in probe for k in ("httpGet", "tcpSocket", "exec")):
                raise Unsupported(f"{probe_kind} of container {container['name']!r}: only "
                                  "httpGet, tcpSocket and exec probes are supported")
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "resourceFieldRef" in source or "fileKeyRef" in source:
                raise Unsupported(f"env {var['name']!r}: only value, secretKeyRef, "
                                  "configMapKeyRef and fieldRef are supported")


class ObjectCache:
    """Objects read for volume re-syncs, shared by every pod of the node for `ttl` seconds.

    The kubelet's TTL cache strategy: a thousand pods that mount one Secret cost one GET
    per period, not a thousand.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], tuple[float, dict[str, Any] | None]] = {}

    def get(self, api: Api, path: str) -> dict[str, Any] | None:
        key = (id(api), path)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.ttl:
                return entry[1]
        obj = api.get_or_none(path)
        with self._lock:
            self._entries[key] = (now, obj)
        return obj


class ObjectReader:
    """Secrets and ConfigMaps of one namespace, read with the node identity, cached per use.

    With `shared`, reads go through the node's TTL cache (volume re-syncs).
    """

    def __init__(self, api: Api, namespace: str, shared: ObjectCache | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.shared = shared
        self._cache: dict[tuple[str, str], dict[str, bytes] | None] = {}

    def _read(self, kind: str, name: str) -> dict[str, bytes] | None:
        key = (kind, name)
        if key not in self._cache:
            plural = "secrets" if kind == "secret" else "configmaps"
            path = f"/api/v1/namespaces/{self.namespace}/{plural}/{name}"
            try:
                obj = (self.shared.get(self.api, path) if self.shared is not None
                       else self.api.get_or_none(path))
            except ApiError as exc:
                # 403 right after binding is normal: the Node authorizer learns of the
                # pod -> object edge a moment later. Retried like any other failure.
                raise ConfigError(CONFIG_ERROR, f'cannot read {kind} "{name}": {exc}') from None
            if obj is None:
                self._cache[key] = None
            elif kind == "secret":
                self._cache[key] = {k: base64.b64decode(v)
                                    for k, v in (obj.get("data") or {}).items()}
            else:
                data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
                data.update({k: base64.b64decode(v)
                             for k, v in (obj.get("binaryData") or {}).items()})
                self._cache[key] = data
        return self._cache[key]

    def secret(self, name: str) -> dict[str, bytes] | None:
        return self._read("secret", name)

    def config_map(self, name: str) -> dict[str, bytes] | None:
        return self._read("configmap", name)


def field_value(pod: Mapping[str, Any], path: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        # Host networking: every pod shares the host's loopback address.
        "status.podIP": HOST_IP,
        "status.hostIP": HOST_IP,
        "status.podIPs": HOST_IP,
        "status.hostIPs": HOST_IP,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(values.items()))
    match = _MAP_FIELD.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise Unsupported(f"fieldRef {path!r} is not supported by the local kubelet")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: unknown references stay as written, $$ escapes."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if text[i + 1] == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env[name] if name in env else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _decode(value: bytes) -> str:
    # surrogateescape round-trips arbitrary secret bytes through str to the process.
    return value.decode("utf-8", errors="surrogateescape")


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any], reader: ObjectReader,
                  base: Mapping[str, str]) -> dict[str, str]:
    """The container's environment; ConfigError names what is missing, like the kubelet."""
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            ref, kind, data = source["secretRef"], "secret", reader.secret(
                source["secretRef"]["name"])
        else:
            ref, kind, data = source["configMapRef"], "configmap", reader.config_map(
                source["configMapRef"]["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(CONFIG_ERROR, f'{kind} "{ref["name"]}" not found')
        for key, value in data.items():
            env[prefix + key] = _decode(value)
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            env[name] = expand(var.get("value", ""), env)
        elif "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        else:
            is_secret = "secretKeyRef" in source
            ref = source["secretKeyRef"] if is_secret else source["configMapKeyRef"]
            data = reader.secret(ref["name"]) if is_secret else reader.config_map(ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                kind = "secret" if is_secret else "configmap"
                raise ConfigError(CONFIG_ERROR, f'{kind} "{ref["name"]}" not found')
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                kind = "Secret" if is_secret else "ConfigMap"
                raise ConfigError(CONFIG_ERROR, f"couldn't find key {ref['key']} in "
                                                f"{kind} {namespace}/{ref['name']}")
            env[name] = _decode(data[ref["key"]])
    env.setdefault("HOME", "/")
    return env


# --- volumes ---------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def quantity_bytes(text: str | int) -> int:
    """A Kubernetes resource.Quantity ("2Gi", "512Mi", "300k", "1e6") in whole bytes.

    Rounded up, like Quantity.Value(); ValueError names what is wrong.
    """
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"{text!r} is not a quantity (e.g. 2Gi, 512Mi, 300k)")
    sign, number, suffix = match.groups()
    value = Fraction(number + ("0" if number.endswith(".") else ""))
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    elif suffix:
        value *= Fraction(10) ** int(suffix[1:])
    if sign == "-" and value:
        raise ValueError(f"{text!r} is negative")
    return math.ceil(value)


def empty_dir_limit(volume: Mapping[str, Any]) -> int | None:
    """Bytes the emptyDir may hold, or None: no sizeLimit (or 0, which the kubelet ignores)."""
    limit = (volume.get("emptyDir") or {}).get("sizeLimit")
    if limit is None:
        return None
    try:
        size = quantity_bytes(limit)
    except ValueError as exc:
        raise Unsupported(f"volume {volume['name']!r}: emptyDir sizeLimit {exc}") from None
    return size or None


# Test knob: a node whose disk has less free space than a pod's sizeLimit. The kubelet
# process reads the file named here (set by kubelet.main; LocalKubelet.set_node_disk_free
# writes it) each time it mounts a sized emptyDir.
NODE_DISK_FREE_FILE = "node-disk-free"
_node_disk_file: Path | None = None
# tmpfs takes size=0 as "no limit": the smallest honest disk is one page.
_PAGE = 4096


def watch_node_disk(path: Path | None) -> None:
    """Where this kubelet process finds the node-disk-free knob (None: never shrink)."""
    global _node_disk_file
    _node_disk_file = path


def node_disk_free() -> int | None:
    """The bytes the knob says the node's disk has free, or None when it is not set."""
    if _node_disk_file is None:
        return None
    try:
        text = _node_disk_file.read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit():
        raise OSError(f"test knob {_node_disk_file} holds {text!r}, not a byte count")
    return int(text)


def tmpfs_size(limit: int, free: int | None) -> int:
    """The tmpfs backing an emptyDir of `limit`: smaller when the node's disk is fuller."""
    return limit if free is None else max(min(limit, free), _PAGE)


def _mount_tool(argv: list[str]) -> None:
    """Run mount/umount; any failure is an OSError, which the pod worker reports."""
    tool = shutil.which(argv[0], path=SYSTEM_PATH)
    if tool is None:
        raise OSError(f"local kubelet needs util-linux {argv[0]}")
    try:
        done = subprocess.run([tool, *argv[1:]], capture_output=True, text=True, timeout=30,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"{' '.join(argv)} timed out") from exc
    if done.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


def mount_size_limited(target: Path, size: int) -> None:
    """Back an emptyDir with a tmpfs of `size` bytes, so a full volume answers ENOSPC.

    A real kubelet evicts a pod whose disk-backed emptyDir outgrows its sizeLimit; here
    the writer sees the filesystem full instead, as on a full node disk or a Memory
    emptyDir. Mounted in the host's namespace, so it outlives container restarts like
    the kubelet's emptyDir, and every container's bind mount shares it.
    """
    if os.path.ismount(target):
        return  # built before (a retried volume setup): keep what the pod wrote
    try:
        _mount_tool(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                     "lucid-empty-dir", str(target)])
    except OSError as exc:
        raise ConfigError(CREATING, f"cannot mount a tmpfs of {size} bytes: {exc}") from None


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def unmount_volumes(root: Path) -> list[str]:
    """Unmount every mount below `root`, deepest first; returns what was unmounted."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    points = {point for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if (point := _unescape_mountinfo(line.split()[4])).startswith(prefix)}
    ordered = sorted(points, key=len, reverse=True)
    for point in ordered:
        try:
            _mount_tool(["umount", point])
        except OSError as exc:
            # Still busy (a process left in it): detach now, freed once unused.
            log.warning("%s; detaching it lazily", exc)
            _mount_tool(["umount", "--lazy", point])
    return ordered


# How often a running pod's Secret, ConfigMap and downward API volumes are re-read and,
# when changed, rewritten in place (the kubelet's sync period, a minute there; shorter
# here so rotation tests need not wait). LUCID_KUBELET_VOLUME_SYNC_SECONDS overrides it.
VOLUME_SYNC_SECONDS = float(os.environ.get("LUCID_KUBELET_VOLUME_SYNC_SECONDS", "10"))
# Kept current by re-syncs (emptyDir and hostPath are the pod's own).
SYNCED_VOLUMES = ("secret", "configMap", "projected", "downwardAPI")
DATA_LINK = "..data"


@dataclass
class Volumes:
    dirs: dict[str, Path]
    # Wall-clock time after which the projected tokens must be requested again.
    refresh_at: float = float("inf")
    # Monotonic time of the next re-sync of Secret/ConfigMap/downward API contents.
    resync_at: float = 0.0


def _parse_time(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def _mode(value: Any, default: int) -> int:
    return int(value) if value is not None else default


class VolumeBuilder:
    """Materialises a pod's volumes as directories under `root`, one per volume."""

    def __init__(self, pod: Mapping[str, Any], reader: ObjectReader, api: Api, root: Path) -> None:
        self.pod = pod
        self.reader = reader
        self.api = api
        self.root = root
        security = pod["spec"].get("securityContext") or {}
        self.fs_group: int | None = security.get("fsGroup")
        # Like the kubelet: a token file belongs to the pod's user when all containers
        # share one, so a defaultMode of 0600 still lets that user read it.
        users = {(c.get("securityContext") or {}).get("runAsUser", security.get("runAsUser"))
                 for c in pod["spec"]["containers"]}
        self.token_owner: int | None = users.pop() if len(users) == 1 else None
        self.run_as_user: int | None = security.get("runAsUser")

    def build(self, tokens_only: bool = False) -> Volumes:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        result = Volumes({})
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            has_token = any("serviceAccountToken" in s
                            for s in (volume.get("projected") or {}).get("sources") or [])
            if tokens_only and not has_token:
                continue
            try:
                result.dirs[name] = self._one(volume, result)
            except ConfigError as exc:
                raise ConfigError(CREATING, f'MountVolume.SetUp failed for volume "{name}" : '
                                            f"{exc.message}") from None
        return result

    def resync(self) -> list[str]:
        """Re-read the Secret, ConfigMap and downward API volumes; rewrite those that changed.

        Tokens are kept (they are renewed on their own schedule). A volume whose source
        cannot be read now keeps its content, as on a real kubelet; the error is raised
        after the other volumes were synced. Returns the names of the rewritten volumes.
        """
        changed: list[str] = []
        failed: ConfigError | None = None
        for volume in self.pod["spec"].get("volumes") or []:
            if not any(kind in volume for kind in SYNCED_VOLUMES):
                continue
            try:
                if self._one(volume, Volumes({}), keep_tokens=True, only_if_changed=True):
                    changed.append(volume["name"])
            except ConfigError as exc:
                failed = ConfigError(exc.reason, f'volume "{volume["name"]}": {exc.message}')
        if failed is not None:
            raise failed
        return changed

    def _one(self, volume: Mapping[str, Any], result: Volumes, keep_tokens: bool = False,
             only_if_changed: bool = False) -> Path | bool:
        """The volume's directory; with `only_if_changed`, whether it was rewritten."""
        if "hostPath" in volume:
            return self._host_path(volume["hostPath"])
        target = self.root / volume["name"]
        target.mkdir(mode=0o755, exist_ok=True)
        if "emptyDir" in volume:
            limit = empty_dir_limit(volume)
            if limit is not None:
                size = tmpfs_size(limit, node_disk_free())
                if size < limit:
                    log.info("emptyDir %r: the node's disk has %d bytes free (test knob), "
                             "less than its sizeLimit of %d", volume["name"], size, limit)
                mount_size_limited(target, size)
            # World-writable like the kubelet's emptyDir, owned by the pod's user/fsGroup.
            target.chmod(0o2777 if self.fs_group is not None else 0o777)
            os.chown(target, self.run_as_user if self.run_as_user is not None else -1,
                     self.fs_group if self.fs_group is not None else -1)
            return target
        files: dict[str, tuple[bytes, int]] = {}
        token_files: set[str] = set()
        if "secret" in volume:
            source = volume["secret"]
            files = self._keyed("secret", source.get("secretName", ""), source,
                                _mode(source.get("defaultMode"), 0o644))
        elif "configMap" in volume:
            source = volume["configMap"]
            files = self._keyed("configmap", source["name"], source,
                                _mode(source.get("defaultMode"), 0o644))
        elif "downwardAPI" in volume:
            source = volume["downwardAPI"]
            files = self._downward(source.get("items") or [],
                                   _mode(source.get("defaultMode"), 0o644))
        else:
            projected = volume["projected"]
            default = _mode(projected.get("defaultMode"), 0o644)
            for source in projected.get("sources") or []:
                if "secret" in source:
                    files.update(self._keyed("secret", source["secret"]["name"],
                                             source["secret"], default))
                elif "configMap" in source:
                    files.update(self._keyed("configmap", source["configMap"]["name"],
                                             source["configMap"], default))
                elif "downwardAPI" in source:
                    files.update(self._downward(source["downwardAPI"].get("items") or [],
                                                default))
                else:
                    token_source = source["serviceAccountToken"]
                    kept = _current_file(target, token_source["path"]) if keep_tokens else None
                    if kept is not None:
                        token = kept.decode()
                    else:
                        token, refresh_at = self._token(token_source)
                        result.refresh_at = min(result.refresh_at, refresh_at)
                    files[token_source["path"]] = (token.encode(), _mode(
                        token_source.get("mode"), default))
                    token_files.add(token_source["path"])
        written = _write_files(target, files, self.fs_group,
                               {p: self.token_owner for p in token_files
                                if self.token_owner is not None},
                               only_if_changed=only_if_changed)
        return written if only_if_changed else target

    def _host_path(self, source: Mapping[str, Any]) -> Path:
        path = Path(source["path"])
        kind = source.get("type") or ""
        if kind == "DirectoryOrCreate":
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644)
        elif kind == "Directory" and not path.is_dir():
            raise ConfigError(CREATING, f"hostPath type check failed: {path} is not a directory")
        elif kind == "File" and not path.is_file():
            raise ConfigError(CREATING, f"hostPath type check failed: {path} is not a file")
        return path

    def _keyed(self, kind: str, name: str, source: Mapping[str, Any],
               default_mode: int) -> dict[str, tuple[bytes, int]]:
        data = self.reader.secret(name) if kind == "secret" else self.reader.config_map(name)
        optional = bool(source.get("optional"))
        if data is None:
            if optional:
                return {}
            raise ConfigError(CREATING, f'{kind} "{name}" not found')
        items = source.get("items")
        if not items:
            return {key: (value, default_mode) for key, value in data.items()}
        files: dict[str, tuple[bytes, int]] = {}
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                what = "config" if kind == "configmap" else "secret"
                raise ConfigError(CREATING, f"references non-existent {what} key: {item['key']}")
            files[item["path"]] = (data[item["key"]], _mode(item.get("mode"), default_mode))
        return files

    def _downward(self, items: Iterable[Mapping[str, Any]],
                  default_mode: int) -> dict[str, tuple[bytes, int]]:
        files: dict[str, tuple[bytes, int]] = {}
        for item in items:
            if "fieldRef" not in item:
                raise Unsupported(f"downwardAPI item {item['path']!r}: only fieldRef is "
                                  "supported by the local kubelet")
            value = field_value(self.pod, item["fieldRef"]["fieldPath"])
            files[item["path"]] = (value.encode(), _mode(item.get("mode"), default_mode))
        return files

    def _token(self, source: Mapping[str, Any]) -> tuple[str, float]:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        account = spec.get("serviceAccountName") or "default"
        request_spec: dict[str, Any] = {
            "expirationSeconds": int(source.get("expirationSeconds") or 3600),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                               "name": meta["name"], "uid": meta["uid"]},
        }
        if source.get("audience"):
            request_spec["audiences"] = [source["audience"]]
        try:
            answer = self.api.call(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": request_spec})
        except ApiError as exc:
            raise ConfigError(CREATING, f"failed to fetch token: {exc}") from None
        status = answer.get("status") or {}
        now = time.time()
        expires = _parse_time(status["expirationTimestamp"])
        # The kubelet's rule: refresh at 80% of the lifetime, and at least daily.
        return str(status["token"]), now + min(0.8 * max(expires - now, 0.0), 86400.0)


def _current_file(root: Path, rel: str) -> bytes | None:
    """A file of the volume's current version, or None."""
    try:
        return (root / DATA_LINK / rel).read_bytes()
    except OSError:
        return None


def _current_payload(root: Path) -> dict[str, tuple[bytes, int]] | None:
    """The files (content, mode) of the volume's current version; None before the first."""
    data = root / DATA_LINK
    if not data.is_symlink():
        return None
    version = root / os.readlink(data)
    payload: dict[str, tuple[bytes, int]] = {}
    for path in version.rglob("*"):
        if path.is_file() and not path.is_symlink():
            payload[str(path.relative_to(version))] = (path.read_bytes(),
                                                       stat.S_IMODE(path.stat().st_mode))
    return payload


def _write_files(root: Path, files: Mapping[str, tuple[bytes, int]], fs_group: int | None,
                 owners: Mapping[str, int], only_if_changed: bool = False) -> bool:
    """Write a volume's files the way the kubelet's AtomicWriter does. True if written.

    The files go into a fresh hidden version directory; `..data` is then pointed at it
    with one rename, and each top-level name is a symlink through `..data`. A reader
    (the container sees the directory through a bind mount) thus finds either the old
    version or the new one, never a half-written file or a mix of the two.
    """
    final_modes = {rel: (mode | 0o440 if fs_group is not None else mode) & 0o7777
                   for rel, (_content, mode) in files.items()}
    wanted = {rel: (content, final_modes[rel]) for rel, (content, _mode) in files.items()}
    if only_if_changed and _current_payload(root) == wanted:
        return False
    version = root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{secrets.token_hex(4)}"
    version.mkdir(mode=0o755)
    for rel, (content, _mode) in files.items():
        path = version / rel
        resolved = path.resolve()
        if resolved == version.resolve() or not resolved.is_relative_to(version.resolve()):
            shutil.rmtree(version)
            raise Unsupported(f"volume item path {rel!r} escapes its volume")
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        # 0600 until the final owner and mode are set.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        if fs_group is not None:
            os.chown(path, -1, fs_group)
        if rel in owners:
            os.chown(path, owners[rel], -1)
        path.chmod(final_modes[rel])
    data = root / DATA_LINK
    previous = root / os.readlink(data) if data.is_symlink() else None
    scratch = root / f"{DATA_LINK}_tmp"
    scratch.unlink(missing_ok=True)
    scratch.symlink_to(version.name)
    os.replace(scratch, data)
    tops = {Path(rel).parts[0] for rel in files}
    for top in tops:
        link = root / top
        if link.is_symlink():
            continue
        if link.is_dir():
            shutil.rmtree(link)
        elif link.exists():
            link.unlink()
        link.symlink_to(f"{DATA_LINK}/{top}")
    for entry in root.iterdir():
        if not entry.name.startswith("..") and entry.is_symlink() and entry.name not in tops:
            entry.unlink()  # a key that left the Secret leaves the volume too
    if previous is not None and previous != version:
        shutil.rmtree(previous, ignore_errors=True)
    return True


# --- identity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    uid: int | None
    gid: int | None
    groups: tuple[int, ...]
    read_only_root: bool
    no_new_privs: bool
    caps: tuple[str, ...] | None  # None keeps every capability (privileged)


def identity(pod: Mapping[str, Any], container: Mapping[str, Any],
             image_uid: int | None = None) -> Identity:
    """The container's user, groups and privileges; `image_uid` is the image's USER (None:
    root, and always so in process mode, which has no image)."""
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return sc[key] if sc.get(key) is not None else pod_sc.get(key)

    uid, gid = pick("runAsUser"), pick("runAsGroup")
    where = f'(pod: "{pod_label(pod)}", container: {container["name"]})'
    if pick("runAsNonRoot"):
        if uid is None and not image_uid:
            raise ConfigError(CONFIG_ERROR, f"container has runAsNonRoot and image will run "
                                            f"as root {where}")
        if uid is not None and int(uid) == 0:
            raise ConfigError(CONFIG_ERROR, f"container's runAsUser breaks non-root policy "
                                            f"{where}")
    if uid is not None and gid is None:
        # containerd takes the primary group from the image's /etc/passwd, else 0; the
        # host's passwd stands in for the image's.
        try:
            gid = pwd.getpwuid(int(uid)).pw_gid
        except KeyError:
            gid = 0
    groups = [int(g) for g in ([pod_sc["fsGroup"]] if pod_sc.get("fsGroup") is not None
                               else []) + list(pod_sc.get("supplementalGroups") or [])]
    caps: tuple[str, ...] | None = None
    if not sc.get("privileged"):
        wanted = (sc.get("capabilities") or {})
        drop = {c.lower().removeprefix("cap_") for c in wanted.get("drop") or []}
        add = {c.lower().removeprefix("cap_") for c in wanted.get("add") or []}
        base = set() if "all" in drop else set(DEFAULT_CAPS) - drop
        caps = tuple(sorted(base | (add - {"all"})))
    return Identity(
        uid=None if uid is None else int(uid),
        gid=None if gid is None else int(gid),
        groups=tuple(dict.fromkeys(groups)),
        read_only_root=bool(sc.get("readOnlyRootFilesystem")),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        caps=caps,
    )


def setpriv_args(tools: Tools, ident: Identity) -> list[str]:
    args = [tools.setpriv]
    if ident.uid is not None:
        args.append(f"--reuid={ident.uid}")
    if ident.gid is not None:
        args.append(f"--regid={ident.gid}")
    if ident.groups:
        args.append("--groups=" + ",".join(str(g) for g in ident.groups))
    else:
        args.append("--clear-groups")
    if ident.caps is not None:
        args.append("--inh-caps=-all")
        args.append("--bounding-set=" + ",".join(["-all", *(f"+{c}" for c in ident.caps)]))
    if ident.no_new_privs:
        args.append("--no-new-privs")
    return args


# --- the wrapper -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


def container_mounts(container: Mapping[str, Any], volumes: Mapping[str, Path],
                     env: Mapping[str, str]) -> list[Mount]:
    mounts = []
    for spec in container.get("volumeMounts") or []:
        source = volumes[spec["name"]]
        sub = spec.get("subPath") or expand(spec.get("subPathExpr") or "", env)
        if sub:
            source = source / sub
            if not source.exists():
                # The kubelet creates a missing subPath as a directory in the volume.
                source.mkdir(mode=0o755, parents=True, exist_ok=True)
        mounts.append(Mount(source, spec["mountPath"], bool(spec.get("readOnly"))))
    return mounts


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


Exposure = tuple[str, tuple[str, ...]]


def runtime_exposures(paths: Iterable[str]) -> tuple[Exposure, ...]:
    """Where the pods' runtime (the venv's interpreter) sits under a non-traversable dir.

    Here /root is 0700 and pyenv's Python lives in it, so a non-root container could not
    even exec the venv's python. Each result is (dir to cover with an empty tmpfs, paths
    to bind back into it); this also hides the rest of that dir (e.g. /root/.kube).
    """
    covers: dict[str, list[str]] = {}
    for path in _outermost(str(Path(p).resolve()) for p in paths):
        for ancestor in reversed(Path(path).parents):
            if str(ancestor) != "/" and not ancestor.stat().st_mode & stat.S_IXOTH:
                covers.setdefault(str(ancestor), []).append(path)
                break
    return tuple((cover, tuple(exposed)) for cover, exposed in sorted(covers.items()))


STAGE2 = 'unset OLDPWD\neval "$(/bin/cat)" || exit 128\nexec </dev/null\nexec "$@"'


def stage1_script(tools: Tools, mounts: Iterable[Mount], mask_dirs: Iterable[Path],
                  mask_files: Iterable[Path], ident: Identity, working_dir: str | None,
                  exposures: Iterable[Exposure] = ()) -> str:
    """The root half of the wrapper; every interpolated value goes through shlex.quote."""
    q = shlex.quote
    mount = q(tools.mount)
    mounts = list(mounts)
    lines = ['die() { echo "lucid local kubelet: $*" >&2; exit 128; }']
    covered: list[str] = []
    for cover, exposed in exposures:
        if len(exposed) > 5 or any(_inside(str(m.source), cover) for m in mounts):
            continue  # the cover would hide a volume; non-root pods may then lack Python
        covered.append(cover)
        # Open what must stay visible first: /proc/self/fd/N still reaches it once the
        # tmpfs covers its path (dash redirects only fds 0-9, hence at most five).
        for fd, path in enumerate(exposed, start=5):
            lines.append(f"exec {fd}< {q(path)} || die {q('cannot open ' + path)}")
        lines.append(f"{mount} -t tmpfs -o mode=0755,size=1m lucid-runtime {q(cover)} "
                     f"|| die {q('cannot cover ' + cover)}")
        for fd, path in enumerate(exposed, start=5):
            lines.append(f"mkdir -p {q(path)} && {mount} --no-canonicalize --bind "
                         f"/proc/self/fd/{fd} {q(path)} && {mount} -o remount,bind,ro "
                         f"{q(path)} && exec {fd}<&- || die {q('cannot expose ' + path)}")
    for m in mounts:
        # A bind mount needs an existing target. Outside a covered dir this creates the
        # mount point on the HOST (a known, documented side effect).
        if m.source.is_dir():
            lines.append(f"mkdir -p {q(m.target)} || die {q('cannot create ' + m.target)}")
        else:
            parent = str(Path(m.target).parent)
            lines.append(f"[ -e {q(m.target)} ] || {{ mkdir -p {q(parent)} && "
                         f": > {q(m.target)}; }} || die {q('cannot create ' + m.target)}")
        lines.append(f"{mount} --bind {q(str(m.source))} {q(m.target)} "
                     f"|| die {q('cannot mount ' + m.target)}")
        if m.read_only:
            lines.append(f"{mount} -o remount,bind,ro {q(m.target)} "
                         f"|| die {q('cannot make ' + m.target + ' read-only')}")
    targets = [m.target for m in mounts]
    # The kubelet's keys and every pod's volumes must be invisible in here. Masks go
    # on after the binds (whose sources they may hide) and never over a mount target.
    masked: list[str] = list(covered)
    for directory in _outermost(str(d) for d in mask_dirs if Path(d).is_dir()):
        if directory == "/" or any(_inside(t, directory) for t in targets) or (
                working_dir and _inside(working_dir, directory)) or any(
                _inside(directory, c) for c in covered):
            continue
        masked.append(directory)
        lines.append(f"{mount} -t tmpfs -o ro,size=4k,mode=0755 lucid-masked {q(directory)} "
                     f"|| die {q('cannot mask ' + directory)}")
    for file in mask_files:
        if Path(file).is_file() and not any(_inside(str(file), d) for d in masked):
            lines.append(f"{mount} --bind /dev/null {q(str(file))} "
                         f"|| die {q('cannot mask ' + str(file))}")
    if ident.read_only_root:
        lines.append(f"{mount} -o remount,bind,ro / || die 'cannot make / read-only'")
        for cover in covered:
            lines.append(f"{mount} -o remount,ro {q(cover)} "
                         f"|| die {q('cannot make ' + cover + ' read-only')}")
    cwd = working_dir or "/"
    lines.append(f"cd {q(cwd)} || die {q('no working directory ' + cwd)}")
    privs = " ".join(q(a) for a in setpriv_args(tools, ident))
    lines.append(f'exec {privs} -- {q(tools.sh)} -c {q(STAGE2)} lucid-container "$@"')
    return "\n".join(lines) + "\n"


def _outermost(directories: Iterable[str]) -> list[str]:
    chosen: list[str] = []
    for directory in sorted({os.path.normpath(d) for d in directories}, key=len):
        if not any(_inside(directory, c) for c in chosen):
            chosen.append(directory)
    return chosen


def env_script(env: Mapping[str, str]) -> tuple[bytes, list[str]]:
    """Stage 2's input, plus the names it had to skip (not valid shell variable names)."""
    lines, skipped = [], []
    for name, value in env.items():
        if _SHELL_NAME.match(name):
            lines.append(f"export {name}={shlex.quote(value)}")
        else:
            skipped.append(name)
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape"), skipped


def wrapper_argv(tools: Tools, stage1: str, command: list[str]) -> list[str]:
    return [tools.unshare, "--mount", "--propagation", "private", "--",
            tools.sh, "-c", stage1, "lucid-container", *command]


def exec_probe_argv(tools: Tools, pid: int, ident: Identity, command: list[str]) -> list[str]:
    """An exec probe joins the container's mount namespace with the container's identity."""
    return [tools.nsenter, "-t", str(pid), "-m", "--", *setpriv_args(tools, ident), "--",
            tools.sh, "-c", STAGE2, "lucid-probe", *command]
