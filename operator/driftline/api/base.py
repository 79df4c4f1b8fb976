"""Model bases and cross-field rules.

Python attributes are snake_case, the wire format is Kubernetes camelCase: `Spec.model_validate(spec_dict)` takes what
a handler receives, `model_dump(mode="json", exclude_none=True)` gives it back. Field descriptions come from the
docstring under each field and become the CRD's descriptions and docs/crd-reference.md.

A cross-field rule is written once as a method decorated with `@rule(cel, message)`: pydantic runs the method and the
CRD generator emits the CEL twin into `x-kubernetes-validations`, next to each other so they are read together.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self, Union

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class FieldError(StrEnum):
    """The `reason` of a CEL rule: which kind of field error the API server reports."""

    INVALID = "FieldValueInvalid"
    REQUIRED = "FieldValueRequired"
    FORBIDDEN = "FieldValueForbidden"
    DUPLICATE = "FieldValueDuplicate"


@dataclass(frozen=True)
class Rule:
    """One CEL validation rule as the CRD carries it."""

    cel: str
    message: str
    field_path: str | None = None
    reason: FieldError | None = None

    def as_validation(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason.value
        return out


_RULE_ATTR = "__driftline_rule__"
_RULES_FOUND: dict[type, list[tuple[Rule, Callable[[Any], bool]]]] = {}
"""Each model class's rules, found by _checked_rules."""


def rule(
    cel: str, message: str, *, field_path: str | None = None, reason: FieldError | None = None
) -> Callable[[Callable[[Any], bool]], Callable[[Any], bool]]:
    """Declare a cross-field rule: the decorated method is its Python twin and returns True when the object is valid."""

    def mark(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        setattr(check, _RULE_ATTR, Rule(cel, message, field_path, reason))
        return check

    return mark


def _add_rules_to_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    rules = [r.as_validation() for r in cls.cel_rules()]
    if rules:
        schema.setdefault("x-kubernetes-validations", []).extend(rules)


class _CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        json_schema_extra=_add_rules_to_schema,
    )

    server_only_rules: ClassVar[tuple[Rule, ...]] = ()
    """CEL rules only the API server can judge (transition rules on oldSelf); they have no Python twin."""

    @classmethod
    def _checked_rules(cls) -> list[tuple[Rule, Callable[[Any], bool]]]:
        # Found once per class: walking the MRO at every validation cost more than the validation (a drift reading
        # validates a spec, 50 times a second at 500 services).
        if (found := _RULES_FOUND.get(cls)) is not None:
            return found
        found = []
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                marked = getattr(attr, _RULE_ATTR, None)
                if isinstance(marked, Rule):
                    found.append((marked, attr))
        _RULES_FOUND[cls] = found
        return found

    @classmethod
    def cel_rules(cls) -> list[Rule]:
        """Every rule of this model, as emitted into the CRD."""
        return [r for r, _ in cls._checked_rules()] + list(cls.server_only_rules)

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        failed = [r.message for r, check in self._checked_rules() if not check(self)]
        if failed:
            raise ValueError("; ".join(failed))
        return self


class ApiModel(_CamelModel):
    """A piece of a spec: unknown fields are an error, as with `kubectl apply --validate=strict`."""

    model_config = ConfigDict(extra="forbid")


class StatusModel(_CamelModel):
    """A piece of a status: written by the operator, read back tolerantly so an older operator survives a newer one."""

    model_config = ConfigDict(extra="ignore")

    def api_fields(self) -> dict[str, Any]:
        """The fields set on this piece, by their API names, as JSON: what a status merge patch carries."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


class OpenModel(_CamelModel):
    """An object Driftline checks only in part (a pod template); fields it does not know are kept as they are."""

    model_config = ConfigDict(extra="allow")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself, optional, or the items of a list), if any."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, list):
        found = [m for m in map(_model_of, typing.get_args(annotation)) if m is not None]
        return found[0] if found else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def unknown_fields(model: type[BaseModel], data: Any, path: str) -> list[str]:
    """Paths in `data` (wire names) that `model` has no field for, at every depth: what the API server would drop
    without a word from a status it was sent."""
    if isinstance(data, list):
        return [p for i, item in enumerate(data) for p in unknown_fields(model, item, f"{path}[{i}]")]
    if not isinstance(data, dict):
        return []
    by_alias = {(f.alias or name): f for name, f in model.model_fields.items()}
    out = []
    for key, value in data.items():
        field = by_alias.get(key)
        if field is None:
            out.append(f"{path}.{key}")
        elif (inner := _model_of(field.annotation)) is not None and value is not None:
            out += unknown_fields(inner, value, f"{path}.{key}")
    return out
