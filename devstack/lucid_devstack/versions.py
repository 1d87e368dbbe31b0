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
    "xdotool": "xdotool",
    "xterm": "xterm",
    "openssl": "openssl",
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
}

# Debian packages the stack needs at run time.
APT_PACKAGES = tuple(sorted(set(COMMANDS.values())))
