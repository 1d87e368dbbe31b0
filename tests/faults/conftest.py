"""Fault tests reuse the end-to-end fixtures: the CRD, the operator (stand-in or real recorder)."""

from tests.e2e.conftest import api, crd, operator, sessions  # noqa: F401
from tests.e2e.test_recording_e2e import recorder_operator  # noqa: F401
