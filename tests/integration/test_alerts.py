"""The chart's alert rules (metrics.prometheusRule), through the real `promtool` (Debian's prometheus package): each
alert fires on the series the operator exports when its situation happens, not before, with labels to route on and
annotations that say what happened and where to look; and stays quiet otherwise."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.devcluster import binaries
from driftline.devcluster.prometheus import prometheus_bin
from tests.integration.test_chart import CHART, Helm, documents

pytestmark = pytest.mark.integration
JOB = "d-driftline-metrics"
ROUTE = {"team": "ml"}


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rules the chart renders, as a Prometheus rule file."""
    home = tmp_path_factory.mktemp("alerts")
    helm = Helm(binaries.bin_dir(), home)
    out = helm.run(
        "template", "d", str(CHART), "--namespace", "ops", "--show-only", "templates/prometheusrule.yaml",
        "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.alertLabels.team=ml",
    ).stdout  # fmt: skip
    (rule,) = documents(out)
    path = home / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = prometheus_bin().parent / "promtool"
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=120)


def run(rules: Path, tests: list[dict[str, Any]]) -> None:
    spec = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}
    path = rules.parent / "tests.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    done = promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_are_valid_prometheus_rules(rules: Path) -> None:
    done = promtool("check", "rules", str(rules))
    assert done.returncode == 0 and "SUCCESS: 7 rules found" in done.stdout, done.stdout + done.stderr


def test_operator_down_fires_after_five_minutes_without_a_scrape(rules: Path) -> None:
    said = {
        "summary": "The Driftline operator is down or not scraped",
        "description": f"No Driftline operator has answered a scrape of {JOB} in namespace ops for 5 minutes: no "
        "rollout, rollback, drift reading or retrain happens meanwhile.",
    }
    run(rules, [{
        "interval": "1m",
        "input_series": [{"series": f'up{{job="{JOB}", namespace="ops"}}', "values": "1 1 0 0 0 0 0 0 0 0"}],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "DriftlineOperatorDown", "exp_alerts": []},  # down 3 minutes: not yet
            {"eval_time": "8m", "alertname": "DriftlineOperatorDown",
             "exp_alerts": [{"exp_labels": {"severity": "critical", **ROUTE}, "exp_annotations": said}]},
        ],
    }])  # fmt: skip


def test_reconcile_errors_fire_above_a_tenth_of_the_reconciles(rules: Path) -> None:
    series = f'driftline_operator_reconciles_total{{job="{JOB}", namespace="ops", kind="%s", result="%s"}}'
    run(rules, [{
        "interval": "1m",
        "input_series": [
            {"series": series % ("InferenceService", "ok"), "values": "0+10x40"},
            {"series": series % ("InferenceService", "error"), "values": "0+5x40"},  # a third of them
            {"series": series % ("TrainingJob", "ok"), "values": "0+10x40"},
            {"series": series % ("TrainingJob", "error"), "values": "0+0x40"},  # none
        ],
        "alert_rule_test": [{
            "eval_time": "30m", "alertname": "DriftlineReconcileErrors",
            "exp_alerts": [{
                "exp_labels": {"namespace": "ops", "kind": "InferenceService", "severity": "warning", **ROUTE},
                "exp_annotations": {
                    "summary": "The Driftline operator fails reconciles of InferenceService",
                    "description": "33.33% of the InferenceService reconciles failed over the last 10 minutes; kopf "
                    "retries them with back-off. The operator's log says why.",
                },
            }],
        }],
    }])  # fmt: skip


def test_drift_fires_once_the_score_stays_above_its_threshold(rules: Path) -> None:
    labels = f'job="{JOB}", namespace="ml", inferenceservice="bc", method="psi"'
    other = f'job="{JOB}", namespace="ml", inferenceservice="quiet", method="psi"'
    run(rules, [{
        "interval": "1m",
        "input_series": [
            {"series": f"driftline_operator_drift_score{{{labels}}}", "values": "0.1 0.1 0.4x10"},
            {"series": f"driftline_operator_drift_threshold{{{labels}}}", "values": "0.25x12"},
            {"series": f"driftline_operator_drift_score{{{other}}}", "values": "0.2x12"},  # under its threshold
            {"series": f"driftline_operator_drift_threshold{{{other}}}", "values": "0.25x12"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "DriftlineDriftDetected", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "DriftlineDriftDetected", "exp_alerts": [{
                "exp_labels": {"namespace": "ml", "inferenceservice": "bc", "method": "psi", "severity": "warning",
                               **ROUTE},
                "exp_annotations": {
                    "summary": "Live inputs of ml/bc drift",
                    "description": "The psi drift score has been above its threshold for 5 minutes (now 0.4). The "
                    "service's drift action (Alert, Rollback or Retrain) says what follows: kubectl describe dis -n "
                    "ml bc.",
                },
            }]},
        ],
    }])  # fmt: skip


def _decisions(kind: str, name: str, reason: str, values: str = "_ _ 1 1 1 1") -> dict[str, str]:
    """An object's decisions counter. By default as the operator makes it: the series appears at 1 with the first
    decision (prometheus_client exports a labelled counter only once it has been incremented)."""
    labels = f'job="{JOB}", namespace="ml", kind="{kind}", name="{name}", type="Warning", reason="{reason}"'
    return {"series": f"driftline_operator_decisions_total{{{labels}}}", "values": values}


def test_a_rollback_a_failed_analysis_and_a_failed_training_each_fire_at_once(rules: Path) -> None:
    run(rules, [{
        "interval": "1m",
        "input_series": [
            _decisions("ModelVersion", "bc-v2", "AnalysisFailed"),  # rolled back
            _decisions("ModelVersion", "bc-v3", "GatesFailed"),  # rejected, never served: no rollback
            _decisions("InferenceService", "bc", "AnalysisFailed"),
            _decisions("TrainingJob", "retrain-7", "JobFailed"),
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "DriftlineVersionRolledBack", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "DriftlineVersionRolledBack", "exp_alerts": [{
                "exp_labels": {"namespace": "ml", "name": "bc-v2", "reason": "AnalysisFailed", "severity": "warning",
                               **ROUTE},
                "exp_annotations": {
                    "summary": "Model version ml/bc-v2 was rolled back",
                    "description": "bc-v2 was taken out of service (AnalysisFailed); the version before it serves "
                    "again. kubectl get mv -n ml bc-v2 -o yaml says why.",
                },
            }]},
            # 15 minutes on, the rollbacks are old news.
            {"eval_time": "20m", "alertname": "DriftlineVersionRolledBack", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "DriftlineAnalysisFailing", "exp_alerts": [{
                "exp_labels": {"namespace": "ml", "name": "bc", "reason": "AnalysisFailed", "severity": "warning",
                               **ROUTE},
                "exp_annotations": {
                    "summary": "A canary of ml/bc failed its analysis",
                    "description": "The canary was aborted (AnalysisFailed): status.analysis of the InferenceService "
                    "holds the measurements and the bounds they missed.",
                },
            }]},
            {"eval_time": "3m", "alertname": "DriftlineTrainingFailed", "exp_alerts": [{
                "exp_labels": {"namespace": "ml", "name": "retrain-7", "severity": "warning", **ROUTE},
                "exp_annotations": {
                    "summary": "TrainingJob ml/retrain-7 failed",
                    "description": "No version was registered; the TrainingJob's Ready condition names the reason "
                    "(kubectl describe dtj -n ml retrain-7).",
                },
            }]},
        ],
    }])  # fmt: skip


def test_a_second_rollback_of_a_version_fires_again_from_its_existing_series(rules: Path) -> None:
    run(rules, [{
        "interval": "1m",
        # Rolled back 20 minutes before the test window (long since quiet), then again at 21m.
        "input_series": [_decisions("ModelVersion", "bc-v1", "DriftDetected", "1+0x20 2+0x5")],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "DriftlineVersionRolledBack", "exp_alerts": []},
            {"eval_time": "22m", "alertname": "DriftlineVersionRolledBack", "exp_alerts": [{
                "exp_labels": {"namespace": "ml", "name": "bc-v1", "reason": "DriftDetected", "severity": "warning",
                               **ROUTE},
                "exp_annotations": {
                    "summary": "Model version ml/bc-v1 was rolled back",
                    "description": "bc-v1 was taken out of service (DriftDetected); the version before it serves "
                    "again. kubectl get mv -n ml bc-v1 -o yaml says why.",
                },
            }]},
        ],
    }])  # fmt: skip


def test_a_service_degraded_for_ten_minutes_fires_and_a_ready_one_does_not(rules: Path) -> None:
    info = 'driftline_inferenceservice_info{job="%s", namespace="ml", inferenceservice="%s", phase="%s", version="3"}'
    run(rules, [{
        "interval": "1m",
        "input_series": [
            {"series": info % (JOB, "bc", "Degraded"), "values": "1x15"},
            {"series": info % (JOB, "fraud", "Ready"), "values": "1x15"},
        ],
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "DriftlineServiceDegraded", "exp_alerts": []},
            {"eval_time": "11m", "alertname": "DriftlineServiceDegraded", "exp_alerts": [{
                "exp_labels": {"job": JOB, "namespace": "ml", "inferenceservice": "bc", "phase": "Degraded",
                               "version": "3", "severity": "warning", **ROUTE},
                "exp_annotations": {
                    "summary": "InferenceService ml/bc is Degraded",
                    "description": "For 10 minutes it has not served what its spec asks (Degraded: e.g. drift metrics "
                    "unavailable, a pinned version rolled back) or serves nothing (Failed: e.g. an invalid spec). Its "
                    "Ready condition says why.",
                },
            }]},
        ],
    }])  # fmt: skip
