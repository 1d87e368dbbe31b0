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

# Debian packages the stack needs at run time.
APT_PACKAGES = (
    "xrdp",
    "tigervnc-standalone-server",
    "x11-apps",
    "x11-utils",
    "xdotool",
    "xterm",
    "openssl",
    # The player's video export.
    "ffmpeg",
    # A reference RDP client: tests log in through xrdp with it.
    "freerdp2-x11",
    # Network faults (lucid_devstack/netfault.py): nft drops packets at random,
    # iptables-legacy's NFQUEUE target delays them (the kernel has no netem).
    "nftables",
    "iptables",
)
