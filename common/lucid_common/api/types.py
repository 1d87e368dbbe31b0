"""Constrained scalar types shared by the spec and status models.

Patterns must mean the same in pydantic (Rust regex) and in the apiserver
(Go RE2), so they stay inside the syntax both share: no look-around, no
back-references, explicit ^...$ anchors (JSON Schema patterns are unanchored).
Every string gets a maxLength because the apiserver bounds the cost of CEL
rules by it.
"""

import re
from fractions import Fraction
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN_PATTERN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"

# RFC 1123 host name (which also covers dotted IPv4) or a bare IPv6 literal.
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_HOSTNAME = rf"{_HOST_LABEL}(\.{_HOST_LABEL})*"
_IPV6 = r"[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}"
HOST_PATTERN = rf"^({_HOSTNAME}|{_IPV6})$"
# host[:port] as the MinIO client takes it: IPv6 literals need brackets here.
ENDPOINT_PATTERN = rf"^({_HOSTNAME}|\[{_IPV6}\])(:[0-9]{{1,5}})?$"

# Kubernetes' qualified name (a label key, a taint key): an optional DNS
# subdomain prefix of at most 253 characters and a slash, then a name of at
# most 63. The regex bounds the name; a CEL rule (`qualified_name_cel`) the prefix.
QUALIFIED_NAME_PATTERN = (
    rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$"
)
QUALIFIED_NAME_MAX_LENGTH = 253 + 1 + 63
_PREFIX_MAX_LENGTH = 253


def qualified_name_cel(var: str) -> str:
    """CEL that holds when the string `var` is a qualified name."""
    return (f"size({var}) <= {QUALIFIED_NAME_MAX_LENGTH}"
            f" && {var}.matches(r'{QUALIFIED_NAME_PATTERN}')"
            f" && (!{var}.contains('/') || {var}.indexOf('/') <= {_PREFIX_MAX_LENGTH})")


def is_qualified_name(value: str) -> bool:
    """Python mirror of `qualified_name_cel`."""
    return (len(value) <= QUALIFIED_NAME_MAX_LENGTH
            and re.fullmatch(QUALIFIED_NAME_PATTERN, value) is not None
            and ("/" not in value or value.index("/") <= _PREFIX_MAX_LENGTH))


# Kubernetes' own rule for keys in a Secret's data.
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

# Kubernetes label value: lets the operator copy the value onto pod labels.
_LABEL_VALUE = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
LABEL_VALUE_PATTERN = rf"^({_LABEL_VALUE})?$"
NONEMPTY_LABEL_VALUE_PATTERN = rf"^{_LABEL_VALUE}$"
LABEL_VALUE_RULE_TEXT = ("at most 63 letters, digits, '-', '_' or '.', starting and ending "
                         "with a letter or digit")

# Free text that still fits on one line of a log or an object's metadata.
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"

# Upper- or lower-case hex, either 64 digits or 32 colon-separated pairs (as
# `openssl x509 -fingerprint -sha256` prints it).
FINGERPRINT_SHA256_PATTERN = r"^([0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31})$"

# Kubernetes' resource.Quantity syntax without the sign: a negative request or
# limit is never valid for a pod.
# The exponent is an integer of at most three digits: Kubernetes refuses a
# fractional one ("1e1.5") when the pod is created, and a huge one
# ("1e99999999999") keeps the apiserver busy until the request times out.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,3}))?$"
)

_QUANTITY_PARTS = re.compile(r"^(?P<number>[0-9]*\.?[0-9]*)(?P<suffix>.*)$")
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
                     "E": 18}


def quantity_value(text: str) -> Fraction:
    """The exact value of a quantity ("250m" is 1/4, "1Gi" 2**30); ValueError if malformed.

    What the CEL quantity() library compares in the apiserver, so a rule's Python mirror
    decides the same way.
    """
    if not isinstance(text, str) or not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 2Gi, 512Mi, 250m)")
    parts = _QUANTITY_PARTS.match(text)
    assert parts is not None  # the pattern above admits nothing else
    number, suffix = parts["number"], parts["suffix"]
    # Fraction keeps "1.1Gi" exact; "1." is a valid quantity but not a valid Fraction.
    value = Fraction(number.rstrip(".") or "0")
    if suffix in _BINARY_SUFFIXES:
        value *= 1024 ** _BINARY_SUFFIXES[suffix]
    elif suffix in _DECIMAL_SUFFIXES:
        value *= Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
    elif suffix:  # e3, E-2: the pattern allows only a signed integer exponent here
        value *= Fraction(10) ** int(suffix[1:])
    return value


SecretName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
]
SecretKey = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)
]
Host = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=HOST_PATTERN)]
Endpoint = Annotated[str, StringConstraints(min_length=1, max_length=261, pattern=ENDPOINT_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]
SingleLine = Annotated[str, StringConstraints(max_length=253, pattern=SINGLE_LINE_PATTERN)]
FingerprintSha256 = Annotated[
    str, StringConstraints(max_length=95, pattern=FINGERPRINT_SHA256_PATTERN)
]

# What the apiserver takes as a JSON integer: an int64, or a float with no
# fraction within +-(2**53 - 1) (JSON decoders may produce 3.0 for 3). Never a
# bool or a numeric string, which pydantic's lax int would coerce.
INT64_MAX = 2**63 - 1
_MAX_JSON_FLOAT = float(2**53 - 1)


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError(f"must be an integer, not {type(value).__name__} {value!r}")
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError("must fit in a 64-bit integer")
    if isinstance(value, float) and not -_MAX_JSON_FLOAT <= value <= _MAX_JSON_FLOAT:
        raise ValueError("must be an integer; a number this large is only a float in JSON")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


def json_int(ge: int | None = None, le: int | None = None) -> Any:
    """JsonInt with bounds, for an Optional field.

    Bounds given on the Field of `JsonInt | None` would reach the schema as
    raw `ge`/`le`; inside the type they become minimum/maximum.
    """
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_json_integer)]

JsonBool = Annotated[bool, Strict()]
# An integer a CEL rule reads: there the apiserver refuses 3.0 ("invalid data,
# expected int, got float64 evaluating rule"), so only a true int passes.
CelInt = Annotated[int, Strict()]

# Kubernetes timestamps are UTC; a naive datetime would serialise without an offset.
Timestamp = AwareDatetime


def _to_quantity(value: Any) -> Any:
    # bool is an int in Python but not in YAML; a fractional float (cpu: 0.5)
    # is what the apiserver's int-or-string rejects, so reject both here too.
    # An integral float (cpu: 2.0) is a JSON integer to the apiserver.
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_JSON_FLOAT:
        value = int(value)
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("a quantity is an integer or a string such as '500m' or '256Mi'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a quantity cannot be negative")
        if value > INT64_MAX:
            raise ValueError("an integer quantity must fit in a 64-bit integer")
        return str(value)
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as '500m', '1' or '256Mi'")
    return value


# The schema is the one Kubernetes itself publishes for resource.Quantity, so
# `cpu: 1` and `memory: 256Mi` both validate; Python always sees a string.
# `pattern` only constrains the string form, so `minimum` covers the integer one.
Quantity = Annotated[
    str,
    BeforeValidator(_to_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "minimum": 0,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
