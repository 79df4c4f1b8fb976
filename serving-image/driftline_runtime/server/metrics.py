"""Prometheus metrics of the model server, on a registry of its own.

Request metrics are plain counters and a histogram updated per request; drift metrics come from a custom collector
that asks the DriftMonitor for a snapshot at scrape time, so no drift arithmetic runs on the request path.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftline_runtime.drift import DriftMonitor
from driftline_runtime.drift.methods import METHODS
from driftline_runtime.feedback import LiveEvaluation, Outcome

# Sub-millisecond for one small row up to seconds for a 10 MB batch.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Rows per estimator call: one row alone up to big client batches; requests per call: one up to a full batch.
BATCH_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
BATCH_REQUESTS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DriftCollector(Collector):
    def __init__(self, monitor: DriftMonitor, model: str, version: str) -> None:
        self._monitor = monitor
        self._labels = [model, version]

    def collect(self) -> Iterable[Metric]:
        snap = self._monitor.snapshot()
        base = ["model", "version"]
        feature = GaugeMetricFamily(
            "driftline_feature_drift",
            "Drift of one input feature between the training profile and the live window (NaN below min samples).",
            labels=[*base, "feature", "method"],
        )
        for name, values in snap.features.items():
            for method, value in values.items():
                feature.add_metric([*self._labels, name, method], value)
        prediction = GaugeMetricFamily(
            "driftline_prediction_drift",
            "Drift of the model's predictions between the training profile and the live window.",
            labels=[*base, "method"],
        )
        for method, value in snap.prediction.items():
            prediction.add_metric([*self._labels, method], value)
        score = GaugeMetricFamily(
            "driftline_drift_score",
            "Largest feature drift for the method (max over features).",
            labels=[*base, "method"],
        )
        share = GaugeMetricFamily(
            "driftline_drifted_features",
            "Share of features (0..1) whose drift is at or over the method's threshold.",
            labels=[*base, "method"],
        )
        threshold = GaugeMetricFamily(
            "driftline_drift_threshold",
            "Threshold a feature's drift must reach to count as drifted in driftline_drifted_features.",
            labels=[*base, "method"],
        )
        for method in METHODS:
            if method in snap.score:
                score.add_metric([*self._labels, method], snap.score[method])
                share.add_metric([*self._labels, method], snap.drifted_share[method])
                threshold.add_metric([*self._labels, method], self._monitor.thresholds[method])
        samples = GaugeMetricFamily(
            "driftline_drift_window_samples",
            "Rows in the live drift window.",
            labels=base,
        )
        samples.add_metric(self._labels, snap.samples)
        min_samples = GaugeMetricFamily(
            "driftline_drift_min_samples",
            "Rows the window needs before drift values are exported as numbers instead of NaN.",
            labels=base,
        )
        min_samples.add_metric(self._labels, self._monitor.min_samples)
        cpu = CounterMetricFamily(
            "driftline_drift_cpu_seconds",
            "CPU time the server spent on drift: binning live rows and computing drift (this scrape's included).",
            labels=base,
        )
        cpu.add_metric(self._labels, self._monitor.cpu_seconds)
        return [feature, prediction, score, share, threshold, samples, min_samples, cpu]


class PerformanceCollector(Collector):
    """Live performance and the labels behind it, computed at scrape time (the window is scored once per change)."""

    def __init__(self, evaluation: LiveEvaluation, model: str, version: str) -> None:
        self._evaluation = evaluation
        self._labels = [model, version]

    def collect(self) -> Iterable[Metric]:
        evaluation = self._evaluation
        snap = evaluation.snapshot()
        base = ["model", "version"]
        performance = GaugeMetricFamily(
            "driftline_live_performance",
            "The model's quality on the labelled window, by the metric names of its validation metrics (NaN below "
            "min samples, or where the rows do not define the metric).",
            labels=[*base, "metric"],
        )
        for name, value in snap.metrics.items():
            performance.add_metric([*self._labels, name], value)
        samples = GaugeMetricFamily(
            "driftline_live_performance_samples", "Labelled rows in the live performance window.", labels=base
        )
        samples.add_metric(self._labels, snap.samples)
        min_samples = GaugeMetricFamily(
            "driftline_live_performance_min_samples",
            "Labelled rows the window needs before live performance is exported as numbers instead of NaN.",
            labels=base,
        )
        min_samples.add_metric(self._labels, evaluation.min_samples)
        pending = GaugeMetricFamily(
            "driftline_feedback_held_rows",
            "Predicted rows kept for their labels (bounded by --feedback-max-rows and --feedback-max-age-seconds).",
            labels=base,
        )
        pending.add_metric(self._labels, evaluation.store.held)
        rows = CounterMetricFamily(
            "driftline_feedback_rows",
            "Labels received, by row and outcome: accepted, unknown (no such request id), expired, duplicate, invalid.",
            labels=[*base, "result"],
        )
        for outcome in Outcome:
            rows.add_metric([*self._labels, outcome.value], evaluation.outcomes[outcome])
        return [performance, samples, min_samples, pending, rows]


class MirrorMetrics:
    """What mirroring to a shadow did: requests and labels sent, failed or dropped, the shadow's latency, and how
    often its answers agreed with the primary's."""

    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        self._labels = (model, version)
        self._requests = Counter(
            "driftline_shadow_requests",
            "Requests mirrored to the shadow, by kind (infer, feedback) and result (ok, error, dropped: the queue was "
            "full).",
            ["model", "version", "kind", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "driftline_shadow_request_duration_seconds",
            "The shadow's answer time to a mirrored request, as the primary saw it.",
            ["model", "version"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        ).labels(model, version)
        self._rows = Counter(
            "driftline_shadow_rows",
            "Mirrored rows whose shadow answer agreed with the primary's, or not (classification).",
            ["model", "version", "result"],
            registry=registry,
        )
        for result in ("agree", "disagree"):  # both series from the start: a ratio of the two is defined at once
            self._rows.labels(model, version, result)

    def request(self, kind: str, result: str) -> None:
        self._requests.labels(*self._labels, kind, result).inc()

    def compared(self, agree: int, disagree: int) -> None:
        self._rows.labels(*self._labels, "agree").inc(agree)
        self._rows.labels(*self._labels, "disagree").inc(disagree)


class ServerMetrics:
    def __init__(
        self,
        model: str,
        version: str,
        sha256: str,
        framework_version: str,
        monitor: DriftMonitor | None,
        evaluation: LiveEvaluation | None = None,
        predictor: str = "scikit-learn",
    ) -> None:
        self.registry = CollectorRegistry()
        self._model, self._version = model, version
        self.requests = Counter(
            "driftline_inference_requests",
            "Inference requests by protocol and HTTP status code.",
            ["model", "version", "protocol", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "driftline_inference_request_duration_seconds",
            "Time from reading an inference request to having its response, by protocol.",
            ["model", "version", "protocol"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "driftline_predictions",
            "Rows predicted.",
            ["model", "version"],
            registry=self.registry,
        ).labels(model, version)
        self._batch_rows = Histogram(
            "driftline_inference_batch_rows",
            "Rows per call of the model: a request's own, or those of the concurrent requests batched together.",
            ["model", "version"],
            buckets=BATCH_ROWS_BUCKETS,
            registry=self.registry,
        ).labels(model, version)
        self._batch_requests = Histogram(
            "driftline_inference_batch_requests",
            "Requests per call of the model (1 when a request is not batched with others).",
            ["model", "version"],
            buckets=BATCH_REQUESTS_BUCKETS,
            registry=self.registry,
        ).labels(model, version)
        self.in_flight = Gauge(
            "driftline_inference_requests_in_flight",
            "Inference requests being served right now.",
            ["model", "version"],
            registry=self.registry,
        ).labels(model, version)
        Gauge(
            "driftline_model_info",
            "The served model and what predicts with it (scikit-learn, or treelite: its compiled trees); always 1.",
            ["model", "version", "sha256", "framework_version", "predictor"],
            registry=self.registry,
        ).labels(model, version, sha256, framework_version, predictor).set(1)
        if monitor is not None:
            self.registry.register(DriftCollector(monitor, model, version))
        if evaluation is not None:
            self.registry.register(PerformanceCollector(evaluation, model, version))

    def mirror(self) -> MirrorMetrics:
        return MirrorMetrics(self.registry, self._model, self._version)

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        self.requests.labels(self._model, self._version, protocol, str(code)).inc()
        self.duration.labels(self._model, self._version, protocol).observe(seconds)

    def observe_batch(self, rows: int, requests: int) -> None:
        self._batch_rows.observe(rows)
        self._batch_requests.observe(requests)

    def render(self) -> bytes:
        return generate_latest(self.registry)
