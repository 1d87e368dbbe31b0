"""Pinned versions of everything the local stack builds or installs.

The Go wrapper modules under devstack/go pin the same Kubernetes and etcd
releases in their go.mod files; tests/stack/test_versions.py keeps them in step.
"""

KUBERNETES = "v1.35.4"
ETCD = "v3.6.16"
# Community MinIO ships as source only; this is its last release tag.
MINIO = "RELEASE.2025-10-15T17-29-55Z"
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
)
