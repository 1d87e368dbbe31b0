"""Pinned versions of everything the local stack builds or installs.

The Go wrapper modules under devstack/go pin the same Kubernetes and etcd
releases in their go.mod files; tests/stack/test_versions.py keeps them in step.
"""

KUBERNETES = "v1.35.4"
ETCD = "v3.6.16"
# Community MinIO ships as source only. Its RELEASE.* tags are not semver, so
# the Go module proxy refuses them ("not available"); this pseudo-version is the
# repository's last commit (2026-02-12), which `go install` accepts.
MINIO = "v0.0.0-20260212201848-7aac2a2c5b7c"
HELM = "v3.22.0"

# Every external command the devstack, the tests and the bench run, and the Debian package
# that brings it. The bootstrap installs these packages and then checks each command is on
# PATH (lucid_devstack.host_commands), so a package that stops shipping a command, as
# tigervnc-standalone-server did with vncpasswd, fails the bootstrap by name.
COMMANDS: dict[str, str] = {
    "xrdp": "xrdp",
    "xrdp-sesman": "xrdp",
    "Xvnc": "tigervnc-standalone-server",
    # Debian 12 moved vncpasswd out of the server package.
    "vncpasswd": "tigervnc-tools",
    "xclock": "x11-apps",
    "xwd": "x11-apps",
    "xdpyinfo": "x11-utils",
    # The desktop's private X cookie (a dependency of Xvnc's package today, run by ours).
    "xauth": "xauth",
    "xdotool": "xdotool",
    "xterm": "xterm",
    "openssl": "openssl",
    # tests/stack/test_desktop.py looks for leftover processes.
    "ps": "procps",
    # The operator-scale bench's stand-in recorder reports its status with it.
    "curl": "curl",
    # The player's video export and the x264 baseline of the bench.
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    # The desktop workloads (lucid_devstack.workloads): a real shell with top and less,
    # a browser on generated pages, windows over a photo wallpaper, a video-like region.
    "bash": "bash",
    "top": "procps",
    "less": "less",
    "chromium": "chromium",
    "feh": "feh",
    "ffplay": "ffmpeg",
    "xcalc": "x11-apps",
    # A reference RDP client: tests log in through xrdp with it.
    "xfreerdp": "freerdp2-x11",
    # Network faults (lucid_devstack/netfault.py): nft drops packets at random,
    # iptables-legacy's NFQUEUE target delays them (the kernel has no netem).
    "nft": "nftables",
    "iptables-legacy": "iptables",
    "ip": "iproute2",
    "tc": "iproute2",
    "ss": "iproute2",
    # The local kubelet's process mode.
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "setpriv": "util-linux",
    "mount": "mount",
    "umount": "mount",
    # Images and the kubelet's container mode: podman with runc (crun cannot set the
    # rlimits this sandbox allows), bases made with debootstrap.
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    # The browser player (player/): its node test suite, its build, and its browser tests,
    # which drive Debian's Chromium with playwright-core (Playwright's own browser
    # downloads are not used). Debian 12's nodejs is 18.19 and has no npm; a machine whose
    # nodejs comes with npm (NodeSource's, which conflicts with Debian's npm package) keeps
    # it: the bootstrap installs a package only when one of its commands is missing.
    # Chromium is listed with the bench workloads above (the same Debian package).
    "node": "nodejs",
    "npm": "npm",
}

# What the bootstrap itself needs beyond the commands: `python3 -m venv` needs ensurepip,
# which Debian ships apart from python3, so a fresh Debian 12 cannot make the venv without it.
BOOTSTRAP_PACKAGES = ("python3-venv",)

# Debian packages the bootstrap installs when missing.
APT_PACKAGES = tuple(sorted(set(COMMANDS.values()) | set(BOOTSTRAP_PACKAGES)))
