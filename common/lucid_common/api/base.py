"""Base class for the RecordingSession models and the CEL rules they carry.

A cross-field rule is declared once, on the model it constrains, as a
`CelRule`: its CEL text goes into the CRD (the apiserver enforces it) and its
Python `check` runs in pydantic (the operator, recorder and tests enforce it),
so the two cannot drift apart silently: the rule, its message and its mirror
sit on adjacent lines.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

# The reasons the apiserver accepts on an x-kubernetes-validations rule.
CEL_REASONS = frozenset(
    {"FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden", "FieldValueDuplicate"}
)


@dataclass(frozen=True)
class CelRule:
    """One x-kubernetes-validations entry plus its Python mirror.

    `check` is None only for transition rules (those using `oldSelf`): they
    compare an update with the stored object, which a single model never sees.
    """

    rule: str
    message: str
    check: Callable[[Any], bool] | None
    field_path: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None and self.reason not in CEL_REASONS:
            raise ValueError(f"CEL reason {self.reason!r} is not one of {sorted(CEL_REASONS)}")
        if self.check is None and "oldSelf" not in self.rule:
            raise ValueError(f"CEL rule {self.rule!r} needs a Python check")

    @property
    def is_transition(self) -> bool:
        return "oldSelf" in self.rule

    def to_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


def _emit_cel_rules(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[CelRule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.to_schema() for rule in rules]


class ApiModel(BaseModel):
    """Common configuration: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        # validate_by_name + validate_by_alias is pydantic 2.11+'s spelling of
        # populate_by_name=True, which is slated for deprecation.
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # The operator and its CRD ship together, so an unknown key is a typo
        # (the apiserver would prune it silently); fail loudly instead.
        extra="forbid",
        json_schema_extra=_emit_cel_rules,
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def drop_nulls(cls, data: Any) -> Any:
        """Read an explicit null as an absent field, as the apiserver does.

        No field of the CRD is nullable, so the apiserver prunes `port: null`
        before defaulting and stores `port: 3389`; without this the models
        would refuse a document the cluster accepts.
        """
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @model_validator(mode="after")
    def check_cel_rules(self) -> Self:
        failed = [
            rule.message
            for rule in type(self).cel_rules
            if rule.check is not None and not rule.check(self)
        ]
        if failed:
            raise ValueError("; ".join(failed))
        return self

    def to_k8s(self) -> dict[str, Any]:
        """JSON-ready dict for the Kubernetes API.

        None is left out because the CRD declares no field nullable: the
        apiserver prunes an explicit null (and a merge patch reads it as
        "delete", which is what leaving it out means for a full object).
        """
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
