"""The operator reads LUCID_SPOOL_SIZE_LIMIT the way Kubernetes reads a Quantity.

The local kubelet has its own parser on purpose (it stands in for Kubernetes, so a
parser bug shared by operator and kubelet would go unseen): the two are checked
against each other here.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lucid_common.api.types import QUANTITY_PATTERN
from lucid_devstack import kubelet_spec
from lucid_operator.quantity import format_bytes, quantity_bytes, quantity_value
from lucid_operator.settings import OperatorSettings


@pytest.mark.parametrize(("text", "expected"), [
    ("2Gi", 2 * 1024**3),
    ("512Mi", 512 * 1024**2),
    ("640Ki", 640 * 1024),
    ("300k", 300_000),
    ("4M", 4_000_000),
    ("1.5Gi", 1536 * 1024**2),
    (".5Ki", 512),
    ("1.", 1),
    ("0.", 0),
    ("1e3", 1000),
    ("1E3", 1000),                  # an exponent, not exa
    ("2E", 2 * 10**18),             # exa
    ("1e+3", 1000),
    ("1e-3", 1),                    # rounded up to whole bytes, like Quantity.Value()
    ("100m", 1),                    # milli-bytes: still one byte
    ("1500m", 2),
    ("0", 0),
    ("1048576", 1048576),
])
def test_quantities_in_bytes(text: str, expected: int):
    assert quantity_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "2GB", "2gi", "Gi", "1.5.5", "e3", "1e", "1 Gi", "-1Mi",
                                  "+1Mi", "2Gi2", "0x10", " 2Gi", "1e1000", "1e1.5"])
def test_invalid_quantities_are_refused(text: str):
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity_bytes(text)


def test_only_strings_are_quantities_here():
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity_bytes(1024)  # type: ignore[arg-type]  # env vars are always text


@pytest.mark.parametrize(("size", "text"), [
    (2 * 1024**3, "2Gi"), (640 * 1024, "640Ki"), (1536 * 1024**2, "1536Mi"), (1000, "1000"),
    (0, "0"),
])
def test_byte_counts_print_in_the_largest_exact_unit(size: int, text: str):
    assert format_bytes(size) == text
    assert quantity_bytes(text) == size


_NUMBERS = st.one_of(
    st.integers(0, 10**6).map(str),
    st.tuples(st.integers(0, 9999), st.integers(0, 9999)).map(lambda p: f"{p[0]}.{p[1]}"),
    st.integers(0, 9999).map(lambda n: f".{n}"),
    st.integers(0, 9999).map(lambda n: f"{n}."),
)
_SUFFIXES = st.one_of(
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T",
                     "P", "E"]),
    st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]),
              st.integers(0, 30)).map(lambda p: f"{p[0]}{p[1]}{p[2]}"),
)


@given(_NUMBERS, _SUFFIXES)
def test_operator_and_local_kubelet_agree_on_every_quantity(number: str, suffix: str):
    text = number + suffix
    assert re.fullmatch(QUANTITY_PATTERN, text), text
    assert quantity_bytes(text) == kubelet_spec.quantity_bytes(text)


@given(st.text(alphabet="0123456789.eE+-KMGTPEimnuk ", max_size=8))
def test_what_the_operator_accepts_the_kubelet_accepts_alike(text: str):
    try:
        ours = quantity_bytes(text)
    except ValueError:
        return  # stricter than the kubelet (no sign), like the CRD schema
    assert kubelet_spec.quantity_bytes(text) == ours


@pytest.mark.parametrize(("smaller", "larger"), [
    ("900m", "1"), ("250m", "0.3"), ("1Gi", "1025Mi"), ("999M", "1G"), ("1e3", "1Ki")])
def test_exact_values_order_what_whole_bytes_cannot(smaller: str, larger: str):
    assert quantity_value(smaller) < quantity_value(larger)
    assert quantity_value("500m") == quantity_value("0.5") == Fraction(1, 2)


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("recorder_memory_request", "4Gi",
     "LUCID_RECORDER_MEMORY_REQUEST (4Gi) is more than LUCID_RECORDER_MEMORY_LIMIT (512Mi)"),
    ("recorder_cpu_request", "1500m",
     "LUCID_RECORDER_CPU_REQUEST (1500m) is more than LUCID_RECORDER_CPU_LIMIT (1)"),
    ("recorder_cpu_limit", "lots", "'lots' is not a Kubernetes quantity"),
])
def test_operator_refuses_recorder_requests_above_limits(setting: str, value: str,
                                                         message: str):
    with pytest.raises(ValidationError, match=re.escape(message)):
        OperatorSettings(**{setting: value})
    settings = OperatorSettings(recorder_ephemeral_storage_request="2Gi",
                                recorder_ephemeral_storage_limit="2Gi")
    assert settings.recorder_ephemeral_storage_limit == "2Gi"
    with pytest.raises(ValidationError, match="EPHEMERAL_STORAGE_REQUEST"):
        OperatorSettings(recorder_ephemeral_storage_request="3Gi",
                         recorder_ephemeral_storage_limit="2Gi")
