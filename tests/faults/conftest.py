"""Fault tests reuse the end-to-end fixtures: the CRD, the operator (stand-in or real recorder)."""

from tests.e2e.conftest import api, crd, operator, recorder_operator, sessions  # noqa: F401
