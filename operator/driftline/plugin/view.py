"""What `kubectl driftline` shows, from the objects as the API server returns them: pure, no I/O.

A service as a tree (like `kubectl argo rollouts get rollout`): its phase and why, the stable and canary versions
with their stages, the analysis of the current step, the latest drift and live performance readings, the shadow
challenger; a model as its versions with stage, headline metric and lineage; and, for a change asked of a
GitOps-managed object, which tool manages it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from driftline.api import constants as c

ARGO_CD_MARKS = ("argocd.argoproj.io/tracking-id", "argocd.argoproj.io/instance")
FLUX_MARKS = ("kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name")


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    status = obj.get("status") or {}
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def _version_line(mv: Mapping[str, Any] | None, number: int, role: str) -> str:
    if mv is None:
        return f"{role}: version {number} (no ModelVersion found)"
    st = mv.get("status") or {}
    headline = f", {st['headlineMetric']}" if st.get("headlineMetric") else ""
    return f"{role}: {mv['metadata']['name']} (version {number}, {st.get('stage') or 'new'}{headline})"


def service_tree(isvc: Mapping[str, Any], versions: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines of `kubectl driftline get inferenceservice NAME`."""
    meta, spec, st = isvc["metadata"], isvc.get("spec") or {}, isvc.get("status") or {}
    by_number = {int(v["spec"]["version"]): v for v in versions}
    ready = _condition(isvc, "Ready")
    lines = [f"Name:      {meta['name']}", f"Namespace: {meta.get('namespace', '')}", f"Model:     {spec.get('model')}"]
    phase = st.get("phase") or "Unknown"
    why = f" ({ready.get('reason')}: {ready.get('message')})" if ready.get("status") == "False" else ""
    lines.append(f"Phase:     {phase}{why}")
    lines.append(f"Replicas:  {st.get('readyReplicas', 0)}/{spec.get('replicas', 1)} ready")
    if st.get("url"):
        lines.append(f"URL:       {st['url']}")
    lines.append(f"Strategy:  {(spec.get('rollout') or {}).get('strategy', 'Rolling')}")
    if st.get("image"):
        lines.append(f"Image:     {st['image']}")
    if st.get("failedImage"):
        failed = st["failedImage"]
        lines.append(
            f"Failed:    image {failed.get('image')} undone ({failed.get('reason')}): {failed.get('message', '')}"
        )
    lines.append("")
    lines.append(f"⟳ {meta['name']}")
    parts: list[str] = []
    if st.get("activeVersion") is not None:
        parts.append(_version_line(by_number.get(int(st["activeVersion"])), int(st["activeVersion"]), "stable"))
    if st.get("canaryVersion") is not None:
        n = int(st["canaryVersion"])
        parts.append(_version_line(by_number.get(n), n, f"canary {st.get('canaryWeight', 0)}%"))
    if st.get("previousVersion") is not None:
        n = int(st["previousVersion"])
        parts.append(_version_line(by_number.get(n), n, "previous"))
    analysis = st.get("analysis") or {}
    if analysis:
        tally = f"{analysis.get('successful', 0)}✔ {analysis.get('failed', 0)}✖ {analysis.get('inconclusive', 0)}? "
        tally += f"{analysis.get('errors', 0)}⚠"
        paused = ", paused" if analysis.get("paused") else ""
        step = f"step {analysis.get('step', 0)} ({analysis.get('weight', 0)}%)"
        parts.append(
            f"analysis of version {analysis.get('version')}: {analysis.get('phase')}{paused} at {step}, {tally}"
        )
    drift = st.get("drift") or {}
    if drift:
        score = drift.get("score")
        shown = "n/a" if score is None else f"{score:.4g}"
        parts.append(
            f"drift: {drift.get('assessment', 'Unknown')} ({drift.get('method', '?')} {shown}, threshold "
            f"{drift.get('threshold', '?')}, {drift.get('samples', 0)} inputs)"
        )
    live = st.get("performance") or {}
    if live:
        value = live.get("value")
        shown = "n/a" if value is None else f"{value:.4g}"
        parts.append(
            f"live {live.get('metric', '?')}: {live.get('assessment', 'Unknown')} ({shown}, threshold "
            f"{live.get('threshold', '?')}, {live.get('samples', 0)} labelled rows)"
        )
    challenger = st.get("shadow") or {}
    if challenger:
        agreement = challenger.get("agreement")
        agreed = "n/a" if agreement is None else f"{agreement:.1%}"
        mine = (
            ", ".join(f"{m['name']} {m['value']:.4g}" for m in challenger.get("challenger") or []) or "no live metrics"
        )
        mirrored = challenger.get("mirrored", 0)
        parts.append(f"shadow: version {challenger.get('version')}, {mirrored} mirrored, agreement {agreed}, {mine}")
    for i, part in enumerate(parts):
        lines.append(("└── " if i == len(parts) - 1 else "├── ") + part)
    return lines


def model_table(
    model: str,
    versions: Sequence[Mapping[str, Any]],
    served: Mapping[tuple[str, int], list[str]],
    *,
    wide: bool = False,
    namespaces: bool = False,
) -> list[str]:
    """The lines of `kubectl driftline get model NAME`: newest version first, where each is served (`served`:
    (namespace, version) -> services). `wide` adds when and by whom each was promoted and its artifact; `namespaces`
    (-A) a NAMESPACE column first, the rows by namespace."""
    head = ["VERSION", "STAGE", "METRIC", "TRAINED BY", "DATASET SHA256", "IMAGE", "SERVED BY"]
    head = (["NAMESPACE"] if namespaces else []) + head + (["PROMOTED", "PROMOTED BY", "ARTIFACT"] if wide else [])
    rows = [tuple(head)]
    mine = [v for v in versions if (v.get("spec") or {}).get("model") == model]
    for mv in sorted(mine, key=lambda v: (v["metadata"].get("namespace") or "", -int(v["spec"]["version"]))):
        spec, st, ns = mv["spec"], mv.get("status") or {}, mv["metadata"].get("namespace") or ""
        number = int(spec["version"])
        row = [
            str(number),
            st.get("stage") or "new",
            st.get("headlineMetric") or "",
            (spec.get("trainingJobRef") or {}).get("name") or "by hand",
            ((spec.get("dataset") or {}).get("sha256") or "")[:12],
            spec.get("servingImage") or spec.get("trainingImage") or "",
            ", ".join(served.get((ns, number), [])),
        ]
        if namespaces:
            row.insert(0, ns)
        if wide:
            row += [
                st.get("promotedAt") or "",
                st.get("promotedBy") or "",
                (spec.get("artifact") or {}).get("storageUri") or "",
            ]
        rows.append(tuple(row))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


_COLOURS = {"green": "32", "yellow": "33", "red": "31"}
_WORDS = {
    "Ready": "green", "Production": "green", "Successful": "green",
    "Progressing": "yellow", "Pending": "yellow", "Running": "yellow", "Candidate": "yellow",
    "Degraded": "red", "Failed": "red", "RolledBack": "red", "Rejected": "red", "Breach": "red",
}  # fmt: skip


def coloured(lines: Sequence[str]) -> list[str]:
    """The lines with phases, stages and verdicts in colour (ANSI), for a terminal: good green, under way yellow,
    bad red."""
    pattern = re.compile(r"\b(" + "|".join(_WORDS) + r")\b")
    return [pattern.sub(lambda m: f"\x1b[{_COLOURS[_WORDS[m.group(1)]]}m{m.group(1)}\x1b[0m", line) for line in lines]


def gitops_manager(obj: Mapping[str, Any]) -> str | None:
    """Argo CD or Flux when they manage `obj` (their tracking label or annotation): a change made here is undone at
    their next sync unless it is made in Git."""
    meta = obj.get("metadata") or {}
    marks = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
    if any(k in marks for k in ARGO_CD_MARKS):
        return "Argo CD"
    if any(k in marks for k in FLUX_MARKS):
        return "Flux"
    return None


def annotation_patch(kind: str, name: str, key: str, value: str) -> str:
    """The same change as YAML to commit, for a GitOps repository."""
    return f"# in Git, on the {kind} {name}:\nmetadata:\n  annotations:\n    {key}: {value!r}\n".replace("'", '"')


def history_table(isvc: Mapping[str, Any]) -> list[str]:
    """The lines of `kubectl driftline history NAME`: every recorded decision, oldest first."""
    rows = [("TIME", "ACTION", "FROM", "TO", "REASON", "MESSAGE")]
    for h in (isvc.get("status") or {}).get("history") or []:
        rows.append(
            (
                str(h.get("time", "")),
                str(h.get("action", "")),
                "" if h.get("fromVersion") is None else str(h["fromVersion"]),
                str(h.get("toVersion", "")),
                str(h.get("reason", "")),
                str(h.get("message", ""))[:100],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def why(isvc: Mapping[str, Any]) -> list[str]:
    """The lines of `kubectl driftline why NAME`: the last decision, what it read and against which thresholds, and
    the conditions now, on one screen."""
    st = isvc.get("status") or {}
    history = st.get("history") or []
    lines: list[str] = []
    if history:
        last = history[-1]
        moved = (
            f"version {last['fromVersion']} -> {last.get('toVersion')}"
            if last.get("fromVersion")
            else (f"version {last.get('toVersion')}")
        )
        lines += [f"Last decision: {last.get('action')} ({moved}) at {last.get('time')}",
                  f"  because {last.get('reason')}: {last.get('message', '')}"]  # fmt: skip
    else:
        lines.append("Last decision: none yet")
    drift = st.get("drift") or {}
    if drift:
        lines.append(
            f"Drift: {drift.get('assessment')} ({drift.get('method')} score {drift.get('score')} against threshold "
            f"{drift.get('threshold')}, {drift.get('consecutiveBreaches', 0)} breaching readings in a row, "
            f"{drift.get('samples', 0)} inputs)"
        )
        for f in drift.get("features") or []:
            lines.append(f"  {f.get('name')}: {f.get('value')}")
        if drift.get("message"):
            lines.append(f"  {drift['message']}")
    analysis = st.get("analysis") or {}
    if analysis:
        said = f", {analysis['message']}" if analysis.get("message") else ""
        lines.append(f"Analysis of version {analysis.get('version')}: {analysis.get('phase')}{said}")
        for m in (analysis.get("measurements") or [])[-5:]:
            bounds = " ".join(f"{k} {m[k]}" for k in ("min", "max") if k in m)
            lines.append(f"  {m.get('time')} {m.get('metric')} = {m.get('value', 'n/a')} ({bounds}): {m.get('phase')}")
    lines.append("Conditions:")
    for cond in st.get("conditions") or []:
        said = f"  {cond.get('type')}={cond.get('status')} {cond.get('reason')}: {cond.get('message', '')}"
        lines.append(said.rstrip(": "))
    return lines


def version_patch(name: str, version: int | None) -> str:
    """The pin (or its removal) as YAML to commit, for a GitOps repository."""
    value = "null" if version is None else str(version)
    return f"# in Git, on the inferenceservice {name}:\nspec:\n  version: {value}\n"


def lineage(
    mv: Mapping[str, Any], trainingjob: Mapping[str, Any] | None, services: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The lines of `kubectl driftline lineage MODELVERSION`: where the version came from (its TrainingJob, and the
    drift that asked for it if it was a retrain; its data, parameters and images) and where it serves now."""
    meta, spec, st = mv["metadata"], mv.get("spec") or {}, mv.get("status") or {}
    number = int(spec["version"])
    headline = f", {st['headlineMetric']}" if st.get("headlineMetric") else ""
    lines = [f"ModelVersion {meta['name']} (model {spec.get('model')}, version {number}, {st.get('stage') or 'new'}"
             f"{headline})"]  # fmt: skip
    parts: list[tuple[str, list[str]]] = []
    artifact = spec.get("artifact") or {}
    parts.append((f"artifact: {artifact.get('storageUri')} sha256 {str(artifact.get('sha256') or '')[:12]}", []))
    ref = spec.get("trainingJobRef") or {}
    if not ref:
        parts.append(("trained by: nobody Driftline knows (registered by hand)", []))
    else:
        tj_st = (trainingjob or {}).get("status") or {}
        found = f" ({tj_st.get('phase') or 'no status'})" if trainingjob else " (deleted since)"
        retrain: list[str] = []
        tj_meta = (trainingjob or {}).get("metadata") or {}
        service = (tj_meta.get("labels") or {}).get(c.LABEL_INFERENCE_SERVICE)
        if service:
            notes = tj_meta.get("annotations") or {}
            served = notes.get(c.ANNOTATION_RETRAIN_SERVED)
            why = notes.get(c.ANNOTATION_RETRAIN_REASON) or "drift"
            on = f" while it served version {served}" if served else ""
            retrain.append(f"a retrain by InferenceService {service}{on}: {why}")
        parts.append((f"trained by: TrainingJob {ref.get('name')}{found}", retrain))
    dataset = spec.get("dataset") or {}
    if dataset:
        parts.append((f"dataset: {dataset.get('uri')} sha256 {str(dataset.get('sha256') or 'unknown')[:12]}", []))
    if spec.get("params"):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(spec["params"].items()))
        parts.append((f"params: {shown}", []))
    if spec.get("trainingImage"):
        parts.append((f"training image: {spec['trainingImage']}", []))
    if spec.get("servingImage"):
        parts.append((f"serving image: {spec['servingImage']}", []))
    where = []
    for s in services:
        s_st = s.get("status") or {}
        if (s.get("spec") or {}).get("model") != spec.get("model"):
            continue
        if s_st.get("activeVersion") == number:
            where.append(f"{s['metadata']['name']} (stable)")
        if s_st.get("canaryVersion") == number:
            where.append(f"{s['metadata']['name']} (canary {s_st.get('canaryWeight', 0)}%)")
    parts.append((f"served by: {', '.join(where) or 'no InferenceService now'}", []))
    for i, (line, below) in enumerate(parts):
        last = i == len(parts) - 1
        lines.append(("└── " if last else "├── ") + line)
        lines += [("    " if last else "│   ") + "└── " + b for b in below]
    return lines
