"""The author's own rights decide: what a TrainingJob makes the operator do, its author must be allowed to do directly
(a custom pod template or image is creating pods; a ServiceAccount it names is using that account; a Secret reference
is reading that Secret; a custom trainer's promotion.auto is promoting). The chart's admission policy refuses such a
spec at apply time; the operator checks the same again, as the author the chart's mutating admission policy recorded,
before it creates the Job, so a validating policy that is not installed never means "allowed". Pure: the spec and the
author in, the checks and a refusal out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.api import constants as c


@dataclass(frozen=True)
class Author:
    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Need:
    """One permission the author must hold, and the field of the spec that asks for it."""

    field: str
    why: str
    verb: str
    resource: str
    group: str = ""
    name: str | None = None

    def describe(self, namespace: str) -> str:
        """As the admission policy says it: "get Secret tok in namespace ns", "create pods in namespace ns"."""
        if self.name:
            kind = {"secrets": "Secret", "serviceaccounts": "ServiceAccount"}.get(self.resource, self.resource)
            return f"{self.verb} {kind} {self.name} in namespace {namespace}"
        verb = f" (the verb {self.verb} on {self.resource}.{self.group})" if self.group else ""
        return f"{self.verb} {self.resource} in namespace {namespace}{verb}"


def author_of(annotations: Mapping[str, str] | None) -> Author | None:
    """The recorded author, if any."""
    username = (annotations or {}).get(c.ANNOTATION_AUTHOR, "")
    if not username:
        return None
    groups = (annotations or {}).get(c.ANNOTATION_AUTHOR_GROUPS, "")
    return Author(username, tuple(g for g in groups.splitlines() if g))


def stamp(author: Author) -> dict[str, str]:
    """The annotations recording `author` (the operator copies an InferenceService's author onto its retrains)."""
    return {c.ANNOTATION_AUTHOR: author.username, c.ANNOTATION_AUTHOR_GROUPS: "\n".join(author.groups)}


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def trainingjob_needs(spec: Mapping[str, Any]) -> list[Need]:
    """What a TrainingJob's spec makes the operator do that its author must be allowed to do."""
    needs: list[Need] = []
    if spec.get("template") is not None or spec.get("image") is not None:
        field = "spec.template" if spec.get("template") is not None else "spec.image"
        needs.append(Need(field, "a custom pod template or image is creating pods", "create", "pods"))
    for key in ("serviceAccountName", "serviceAccount"):  # the second, deprecated, names the same
        account = _get(spec, "template", "spec", key)
        if isinstance(account, str) and account not in ("", "default"):
            why = "the pods would run as this ServiceAccount, with its rights"
            needs.append(Need(f"spec.template.spec.{key}", why, "use", "serviceaccounts", name=account))
    if spec.get("template") is not None and _get(spec, "promotion", "auto") is True:
        why = "a custom trainer reports its own metrics, so promoting what it trained is promoting"
        needs.append(Need("spec.promotion.auto", why, "promote", "modelversions", c.GROUP))
    secret = _get(spec, "dataset", "authorization", "secretKeyRef", "name")
    if isinstance(secret, str):
        why = "the training pod would read this Secret for them"
        needs.append(Need("spec.dataset.authorization", why, "get", "secrets", name=secret))
    key_secret = _get(spec, "signing", "secretKeyRef", "name")
    if isinstance(key_secret, str):
        why = "the training pod would read this Secret for them, and sign as its key"
        needs.append(Need("spec.signing.secretKeyRef", why, "get", "secrets", name=key_secret))
    credentials = _get(spec, "storage", "s3", "credentials")
    for key in ("accessKeyId", "secretAccessKey", "sessionToken"):
        name = _get(credentials, key, "name")
        if isinstance(name, str):
            why = "the pods would read this Secret for them"
            needs.append(Need(f"spec.storage.s3.credentials.{key}", why, "get", "secrets", name=name))
    return needs


def inferenceservice_needs(spec: Mapping[str, Any]) -> list[Need]:
    """What an InferenceService's spec makes the operator do that its author must be allowed to do (its retrain
    template is checked on each retrain TrainingJob, which carries the service's author)."""
    if spec.get("image") is None:
        return []
    return [Need("spec.image", "a custom serving image is creating pods", "create", "pods")]


LIVE_DATA = Need(
    "spec.retrain.data",
    "a retrain on live labels has the operator store the serving pods' labelled rows in a ConfigMap",
    "create",
    "configmaps",
)
"""Checked at each retrain with data LiveLabels (the pods' content becomes a ConfigMap the operator writes)."""


def refusal(namespace: str, author: Author | None, needs: Sequence[Need], denied: Sequence[Need]) -> str | None:
    """Why the operator will not act for this spec: no recorded author while the spec needs rights, or the rights
    the author lacks. None when it may go on."""
    if not needs:
        return None
    if author is None:
        fields = ", ".join(dict.fromkeys(n.field for n in needs))
        return (
            f"{fields}: no author is recorded (annotation {c.ANNOTATION_AUTHOR}, set by the chart's mutating admission"
            " policy), so the operator cannot check that whoever wrote this spec may do what it asks; write it again"
            " (any change, an annotation will do) where the chart's admission policies are installed (Helm values"
            " admission.enabled, admission.recordAuthors)"
        )
    if not denied:
        return None
    return "; ".join(
        f"{n.field}: {n.why}; {author.username} may not {n.describe(namespace)} (checked by the operator as the"
        " recorded author)"
        for n in denied
    )
