"""What `kubectl driftline` shows, from objects as the operator writes them (the captured status fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.plugin import view

pytestmark = pytest.mark.unit
STATUS = Path(__file__).resolve().parents[1] / "data" / "status"


def mv(version: int, stage: str, metric: str = "accuracy=0.97") -> dict[str, Any]:
    return {
        "metadata": {"name": f"breast-cancer-v{version}"},
        "spec": {"model": "breast-cancer", "version": version, "trainingJobRef": {"name": f"lr{version}"},
                 "dataset": {"sha256": "ab" * 32}, "servingImage": "driftline/runtime:0.1.0"},
        "status": {"stage": stage, "headlineMetric": metric},
    }  # fmt: skip


def test_a_canary_reads_as_a_tree_of_its_versions_and_its_analysis() -> None:
    isvc = yaml.safe_load((STATUS / "inferenceservice" / "canary.yaml").read_text())
    st = isvc["status"]
    lines = view.service_tree(isvc, [mv(st["activeVersion"], "Archived"), mv(st["canaryVersion"], "Production")])
    text = "\n".join(lines)
    assert f"Name:      {isvc['metadata']['name']}" in text and "Strategy:  Canary" in text
    assert f"├── stable: breast-cancer-v{st['activeVersion']} (version {st['activeVersion']}, Archived" in text
    assert f"canary {st['canaryWeight']}%: breast-cancer-v{st['canaryVersion']}" in text
    assert f"analysis of version {st['canaryVersion']}: Running at step" in text
    assert lines[-1].startswith("└── ")


def test_a_model_lists_its_versions_newest_first_with_where_each_serves() -> None:
    lines = view.model_table(
        "breast-cancer", [mv(1, "Archived"), mv(2, "Production", "accuracy=0.98")], {("", 2): ["bc"]}
    )
    assert lines[0].split() == [
        "VERSION",
        "STAGE",
        "METRIC",
        "TRAINED",
        "BY",
        "DATASET",
        "SHA256",
        "IMAGE",
        "SERVED",
        "BY",
    ]
    assert lines[1].split() == ["2", "Production", "accuracy=0.98", "lr2", "ab" * 6, "driftline/runtime:0.1.0", "bc"]
    assert lines[2].split()[:2] == ["1", "Archived"]


def test_gitops_managed_objects_are_named_with_the_change_to_commit() -> None:
    argo = {"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "ml:driftline.dev/InferenceService:ml/bc"}}}
    flux = {"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "models"}}}
    assert view.gitops_manager(argo) == "Argo CD" and view.gitops_manager(flux) == "Flux"
    assert view.gitops_manager({"metadata": {}}) is None
    patch = yaml.safe_load(view.annotation_patch("inferenceservice", "bc", "driftline.dev/rollback", "t1"))
    assert patch == {"metadata": {"annotations": {"driftline.dev/rollback": "t1"}}}


def test_history_and_why_of_a_service_that_rolled_back_for_drift() -> None:
    isvc = yaml.safe_load((STATUS / "inferenceservice" / "drifted-rolling-back.yaml").read_text())
    history = view.history_table(isvc)
    recorded = isvc["status"]["history"]
    assert history[0].split()[:4] == ["TIME", "ACTION", "FROM", "TO"] and len(history) == 1 + len(recorded)
    assert history[1].split()[:3] == [recorded[0]["time"], "RollForward", "1"]  # no from: the first roll forward
    assert history[-1].split()[1] == recorded[-1]["action"]
    why = view.why(isvc)
    last = recorded[-1]
    assert why[0].startswith(f"Last decision: {last['action']} (version {last['fromVersion']} -> {last['toVersion']})")
    assert why[1] == f"  because {last['reason']}: {last['message']}"
    drift = isvc["status"]["drift"]
    assert any(
        line.startswith(f"Drift: {drift['assessment']} ({drift['method']} score {drift['score']}") for line in why
    )
    assert "Conditions:" in why and any(line.startswith("  Ready=") for line in why)


def test_a_pin_and_its_removal_as_yaml_for_git() -> None:
    assert yaml.safe_load(view.version_patch("bc", 3)) == {"spec": {"version": 3}}
    assert yaml.safe_load(view.version_patch("bc", None)) == {"spec": {"version": None}}


def test_lineage_of_a_retrained_version_names_the_drift_that_asked_for_it_and_where_it_serves() -> None:
    version = mv(3, "Production")
    version["metadata"]["name"] = "breast-cancer-v3"
    version["spec"] |= {
        "artifact": {"storageUri": "s3://models/breast-cancer/r2", "sha256": "cd" * 32},
        "dataset": {"uri": "s3://data/bc.parquet", "sha256": "ab" * 32},
        "params": {"max_iter": 5000, "C": 0.5},
        "trainingImage": "driftline/runtime:0.1.0",
    }
    retrain = {
        "metadata": {
            "name": "lr3",
            "labels": {"driftline.dev/inferenceservice": "bc"},
            "annotations": {"driftline.dev/retrain-served-version": "2", "driftline.dev/retrain-reason": "psi 0.41"},
        },
        "status": {"phase": "Succeeded"},
    }
    services = [
        {"metadata": {"name": "bc"}, "spec": {"model": "breast-cancer"}, "status": {"activeVersion": 3}},
        {"metadata": {"name": "bc-eu"}, "spec": {"model": "breast-cancer"},
         "status": {"activeVersion": 2, "canaryVersion": 3, "canaryWeight": 25}},
        {"metadata": {"name": "other"}, "spec": {"model": "fraud"}, "status": {"activeVersion": 3}},
    ]  # fmt: skip
    lines = view.lineage(version, retrain, services)
    assert lines == [
        "ModelVersion breast-cancer-v3 (model breast-cancer, version 3, Production, accuracy=0.97)",
        "├── artifact: s3://models/breast-cancer/r2 sha256 cdcdcdcdcdcd",
        "├── trained by: TrainingJob lr3 (Succeeded)",
        "│   └── a retrain by InferenceService bc while it served version 2: psi 0.41",
        "├── dataset: s3://data/bc.parquet sha256 abababababab",
        "├── params: C=0.5, max_iter=5000",
        "├── training image: driftline/runtime:0.1.0",
        "├── serving image: driftline/runtime:0.1.0",
        "└── served by: bc (stable), bc-eu (canary 25%)",
    ]
    # Its TrainingJob deleted since, and nothing serving it: said so, not left out.
    gone = view.lineage(version, None, [])
    assert (
        "├── trained by: TrainingJob lr3 (deleted since)" in gone
        and gone[-1] == "└── served by: no InferenceService now"
    )
    by_hand = {**version, "spec": {k: v for k, v in version["spec"].items() if k != "trainingJobRef"}}
    assert "├── trained by: nobody Driftline knows (registered by hand)" in view.lineage(by_hand, None, [])


def test_watch_appends_a_frame_only_when_the_tree_changes_and_stops_at_its_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from driftline.plugin import cli

    frames = iter([["Phase: Progressing"], ["Phase: Progressing"], ["Phase: Ready"]])
    clock = iter([0.0, 0.5, 0.5, 1.5, 1.5, 3.0])  # monotonic(): the start, then the deadline check and the nap
    monkeypatch.setattr(cli, "_tree", lambda k, name: ({}, next(frames)))
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(cli.time, "sleep", lambda _: None)
    assert cli._watch(None, "bc", timeout=2.5, interval=1.0) == 0  # type: ignore[arg-type]
    assert capsys.readouterr().out == "Phase: Progressing\n\nPhase: Ready\n"  # not a terminal: appended, no escapes


def test_a_model_wide_and_in_every_namespace() -> None:
    prod = mv(2, "Production")
    prod["metadata"]["namespace"] = "ml"
    prod["status"] |= {"promotedAt": "2026-12-07T10:00:00Z", "promotedBy": "policy/lr2"}
    prod["spec"]["artifact"] = {"storageUri": "s3://models/bc/r2"}
    staging = mv(1, "Candidate")
    staging["metadata"]["namespace"] = "staging"
    lines = view.model_table("breast-cancer", [staging, prod], {("ml", 2): ["bc"]}, wide=True, namespaces=True)
    assert lines[0].split()[:2] == ["NAMESPACE", "VERSION"] and lines[0].split()[-4:] == [
        "PROMOTED",
        "PROMOTED",
        "BY",
        "ARTIFACT",
    ]
    assert lines[1].split()[:3] == ["ml", "2", "Production"] and lines[1].split()[-3:] == [
        "2026-12-07T10:00:00Z",
        "policy/lr2",
        "s3://models/bc/r2",
    ]
    assert lines[2].split()[:3] == ["staging", "1", "Candidate"]


def test_colour_marks_good_green_under_way_yellow_and_bad_red_and_leaves_the_rest() -> None:
    lines = view.coloured(
        ["Phase:     Degraded (x)", "├── stable: m-v1 (version 1, Production)", "Name:      Readyish"]
    )
    assert lines[0] == "Phase:     \x1b[31mDegraded\x1b[0m (x)"
    assert "\x1b[32mProduction\x1b[0m" in lines[1]
    assert lines[2] == "Name:      Readyish"  # whole words only


def test_a_service_shows_the_image_it_runs_and_an_image_that_failed() -> None:
    isvc = {
        "metadata": {"name": "bc", "namespace": "ml"},
        "spec": {"model": "breast-cancer", "image": "registry.invalid/x:9"},
        "status": {
            "phase": "Degraded",
            "activeVersion": 1,
            "image": "driftline/runtime:0.2.0",
            "failedImage": {"image": "registry.invalid/x:9", "version": 1, "reason": "ProgressDeadlineExceeded",
                            "message": "pod bc-1: ErrImageNeverPull", "time": "2026-01-01T00:00:00Z"},
        },
    }  # fmt: skip
    lines = view.service_tree(isvc, [mv(1, "Production")])
    assert "Image:     driftline/runtime:0.2.0" in lines
    assert (
        "Failed:    image registry.invalid/x:9 undone (ProgressDeadlineExceeded): pod bc-1: ErrImageNeverPull" in lines
    )


def test_the_tree_shows_live_performance_and_the_shadow() -> None:
    isvc = {
        "metadata": {"name": "bc", "namespace": "ml"},
        "spec": {"model": "bc"},
        "status": {
            "phase": "Ready",
            "activeVersion": 1,
            "performance": {"metric": "accuracy", "value": 0.6123, "threshold": 0.8, "assessment": "Breach",
                            "samples": 300},
            "shadow": {"version": 2, "mirrored": 41, "agreement": 0.875, "challenger": [{"name": "accuracy",
                                                                                          "value": 0.91}]},
        },
    }  # fmt: skip
    lines = view.service_tree(isvc, [])
    assert "live accuracy: Breach (0.6123, threshold 0.8, 300 labelled rows)" in lines[-2]
    assert lines[-1] == "└── shadow: version 2, 41 mirrored, agreement 87.5%, accuracy 0.91"
