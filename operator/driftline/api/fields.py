"""Field types shared by the models: strict scalars, names, URIs, durations, quantities and timestamps.

A pattern that users can get wrong is declared once with `Matches`, which checks it in pydantic and emits the same
check as a CEL rule with a readable message into the CRD, so `kubectl apply` and the operator say the same thing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer, Strict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema


@dataclass(frozen=True)
class Matches:
    """A regular expression a string must match in full, with the message both pydantic and the API server give.

    Keep patterns in the common subset of Python `re` and RE2 (CEL's dialect) and free of single quotes.
    """

    pattern: str
    message: str

    def __post_init__(self) -> None:
        if "'" in self.pattern:
            raise ValueError("a Matches pattern is embedded in a CEL r'...' literal and cannot contain a quote")
        if not (self.pattern.startswith("^") and self.pattern.endswith("$")):
            raise ValueError("a Matches pattern is anchored at both ends, so fullmatch and CEL matches() agree")

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        regex = re.compile(self.pattern)

        def check(value: str) -> str:
            if not regex.fullmatch(value):
                raise ValueError(self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        rule = {"rule": f"self.matches(r'{self.pattern}')", "message": self.message}
        json_schema.setdefault("x-kubernetes-validations", []).append(rule)
        return json_schema


# --- Strict scalars: the API server rejects "3" for an integer, so the models do too. --------------------------------
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # strict float still takes an int, as JSON `number` does
Bool = Annotated[bool, Strict()]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
PositiveInt = Annotated[int, Strict(), Field(ge=1)]
INT32_MAX: Final = 2**31 - 1

# --- Names. ----------------------------------------------------------------------------------------------------------
DNS_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN: Final = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
# Path segments never start with a dot, which keeps `..` and hidden files out of storage paths.
PATH: Final = r"(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+"

MODEL_NAME_MAX: Final = 50
"""`<model>-v<version>` (a ModelVersion's name) and the labels derived from it stay within 63 characters."""
ModelName = Annotated[
    str,
    Field(min_length=1, max_length=MODEL_NAME_MAX),
    Matches(
        f"^{DNS_LABEL}$", "must be a DNS label: lowercase letters, digits and '-', starting and ending alphanumeric"
    ),
]
ModelVersionNumber = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]

MetricName = Annotated[
    str,
    Field(min_length=1, max_length=63),
    Matches(r"^[A-Za-z_][A-Za-z0-9_.-]*$", "must be a metric name such as accuracy, roc_auc or error-rate"),
]

# A CamelCase reason, as metav1.Condition requires.
ReasonString = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    Matches(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", "must be a CamelCase reason such as AnalysisFailed"),
]
Message = Annotated[str, Field(max_length=32768)]
ShortText = Annotated[str, Field(max_length=1024)]
Name = Annotated[str, Field(min_length=1, max_length=253)]
ObjectName = Annotated[
    str,
    Field(min_length=1, max_length=253),
    Matches(
        f"^{DNS_SUBDOMAIN}$",
        "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending alphanumeric",
    ),
]
"""The name of a Secret or ConfigMap (a DNS subdomain)."""
DataKey = Annotated[
    str,
    Field(min_length=1, max_length=253),
    Matches(r"^[-._a-zA-Z0-9]+$", "must be a key of a Secret or ConfigMap: letters, digits, '-', '_' and '.'"),
]
"""A key of a Secret's or ConfigMap's data."""

ImageRef = Annotated[
    str,
    Field(min_length=1, max_length=512),
    Matches(r"^[^\s]+$", "must be a container image reference without spaces, e.g. driftline/runtime:0.1.0"),
]


def image_repository(image: str) -> str:
    """An image reference without its tag and digest: `registry:5000/ml/runtime:1@sha256:…` ->
    `registry:5000/ml/runtime` (a colon in the last path part is a tag's; before it, a registry's port)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return ref[: len(ref) - len(last)] + last.split(":", 1)[0]


ImageId = Annotated[
    str,
    Field(max_length=600),
    Matches(
        r"^([^@\s]+@)?sha256:[0-9a-f]{64}$", "must be an image digest, sha256:<64 hex> or <repository>@sha256:<64 hex>"
    ),
]

# --- URIs. -----------------------------------------------------------------------------------------------------------
S3_BUCKET: Final = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
"""An S3 bucket name as AWS allows it: 3-63 lowercase letters, digits, '.' and '-'."""
DATASET_URI_PATTERN: Final = (
    r"^(https://[^\s]+"
    rf"|pvc://{DNS_SUBDOMAIN}{PATH}"
    rf"|s3://{S3_BUCKET}{PATH}"
    rf"|configmap://{DNS_SUBDOMAIN}/[-._a-zA-Z0-9]+"
    r"|sklearn://[a-z][a-z0-9_]*)$"
)
DatasetUri = Annotated[
    str,
    Field(min_length=1, max_length=2048),
    Matches(
        DATASET_URI_PATTERN,
        "must be https://<url>, pvc://<claim>/<path>, s3://<bucket>/<key>, configmap://<name>/<key> or "
        "sklearn://<name>",
    ),
]
StorageUri = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    Matches(
        rf"^(pvc://{DNS_SUBDOMAIN}({PATH})?|s3://{S3_BUCKET}({PATH})?)$",
        "must be s3://<bucket>/<prefix> or pvc://<claim>/<path>, e.g. s3://models/breast-cancer",
    ),
]
AwsRegion = Annotated[
    str,
    Field(min_length=1, max_length=64),
    Matches(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "must be a region name such as us-east-1"),
]
HttpUrl = Annotated[
    str,
    Field(min_length=1, max_length=2048),
    Matches(r"^https?://[^\s]+$", "must be an http:// or https:// URL"),
]
Sha256 = Annotated[
    str,
    Field(min_length=64, max_length=64),
    Matches(r"^[a-f0-9]{64}$", "must be a sha256 digest: 64 lowercase hexadecimal digits"),
]
KeyFingerprint = Annotated[
    str,
    Field(min_length=71, max_length=71),
    Matches(r"^sha256:[a-f0-9]{64}$", "must be a key fingerprint: sha256: and 64 lowercase hexadecimal digits"),
]
EstimatorPath = Annotated[
    str,
    Field(min_length=3, max_length=256),
    Matches(
        r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
        "must be a Python class path module.Class, e.g. sklearn.linear_model.LogisticRegression",
    ),
]

# --- Durations, as Go's time.ParseDuration spells them, without negative values or units below a millisecond. ------
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
Duration = Annotated[
    str,
    Field(min_length=2, max_length=32),
    Matches(DURATION_PATTERN, "must be a duration such as 30s, 5m, 1h30m or 500ms"),
]
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@functools.lru_cache(maxsize=256)
def parse_duration(text: str) -> float:
    """Seconds in a duration string such as "1h30m" or "500ms". Cached: a monitor parses its interval at every
    reading, and a handful of durations are in use."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


# --- Resource quantities: an integer or a string such as "500m" or "1Gi" (x-kubernetes-int-or-string). ------------
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = Int | Annotated[str, Field(max_length=64, pattern=QUANTITY_PATTERN)]


_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([KMGTPE]i|[numkMGTPE])|[eE]([+-]?[0-9]+))?")
_SUFFIX = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** e for s, e in zip("numkMGTPE", (-9, -6, -3, 3, 6, 9, 12, 15, 18), strict=True)},
}


def quantity_value(value: Any) -> Decimal | None:
    """A resource quantity's value ("500m" -> 0.5, "1Gi" -> 1073741824, "1e3" -> 1000, 2 -> 2), or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    match = _QUANTITY.fullmatch(str(value))
    if match is None:
        return None
    number, suffix, exponent = match.groups()
    return Decimal(number) * (_SUFFIX[suffix] if suffix else Decimal(10) ** int(exponent or 0))


# --- Timestamps: RFC 3339 in UTC at second precision, as metav1.Time writes them, so rewriting is a no-op. ----------
def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]
