"""Ground truth on the request path: what keeping every served prediction for its labels costs inference, what
mirroring a share of requests to a shadow costs it, how fast the feedback endpoint takes labels, and whether the live
metrics the server exports are scikit-learn's, all in one run.

- The model: breast_cancer LogisticRegression trained by `driftline-runtime train` (bench/serving.py's), served by
  `driftline-runtime serve` processes (bench/serving.py's server()), no cluster, drift monitoring on (the default).
- Cost: two servers side by side, feedback on (`--feedback-max-rows 10000`, the default) and off
  (`--feedback-max-rows 0`), 1-row V2 requests at concurrency 64 from bench/loadgen.py (a process of its own, closed
  loop, 4 s after 1 s of warm-up), in interleaved trials (off/on, then on/off, ...). Before the first trial both take
  20,000 requests unmeasured: the "on" server's store is then full, every request pushing the oldest out (a
  long-running server's steady state, with its memory of evicted ids full too). Reported: rps, p99 and the server's
  CPU time per request (/proc, over the measured window), each on / off as the median of the per-trial ratios; and,
  beside them, the server's own LiveEvaluation.keep() timed alone in this process, in a loop (warm caches, a lower
  bound: measured inside a server on 2026-12-07 it took 31 us a call, not 11.5, and a 10,000-row store added nearly
  twice the CPU per request a 100-row one did: see docs/performance.md).
- Mirroring's cost: a shadow (another `driftline-runtime serve` of the same model directory, its own port, feedback
  at its default) and a primary like "on" plus `--mirror-url <the shadow> --mirror-share 0.2 --mirror-queue 1000`
  (the queue at its default), prefilled like "on" (its 20,000 unmeasured requests mirror ~4,000 to the shadow: both
  warm). Mirroring off is the "on" server itself (same flags but the mirror's), measured once a trial for both arms:
  each trial runs off / on / mirror, the next mirror / on / off, so "on" is always next to both the server it is
  compared with, and each pair's order alternates. Same load, warm-up and window as above. Reported like the
  feedback arm (mirror on / off, median of per-trial ratios; the target, < 5 %, on rps lost and p99 added); and,
  read around each mirroring run (its 1 s warm-up included), the primary's driftline_shadow_requests_total{kind=
  "infer"} by result (ok, dropped: queue full, error), its driftline_predictions_total (the share offered), the
  shadow's answers agreeing with the primary's (driftline_shadow_rows_total), and the shadow's CPU time (/proc) per
  request it answered (its own driftline_predictions_total), all up to the queue drained after the run (polled,
  unmeasured); and, scraped as the load ends, what had been sent by then (a rate), the shadow's mean answer time as
  the primary saw it (driftline_shadow_request_duration_seconds) and so what was still queued; and the primary's
  counters after the whole run. (The warm-ups were not shortened: the run takes ~2 min.)
- Labels: a third server (`--feedback-max-rows` big enough for every id sent) first predicts 1-row requests with ids
  of the benchmark's own ("id" in the V2 body), unmeasured; then each trial sends 1-row labels
  `{"id": ..., "truth": [label]}` to POST /v2/models/{name}/feedback at concurrency 64, each id once (loadgen's
  *.jsonl mode), for 2 s after 0.5 s of warm-up. Every label must be accepted.
- Correctness, on the label server after every trial (its window of 2,000 has wrapped many times by then): 2,000 new
  rows (dataset rows with 2 % noise, labels 10 % flipped) predicted one request each, the predictions read from the
  answers; each row labelled; GET /metrics; driftline_live_performance{metric=...} against scikit-learn's metrics on
  the same rows: accuracy and F1 of the predictions received, ROC AUC and log loss from predict_proba of the
  model.joblib the benchmark trained (joblib.load). Largest absolute difference above 1e-9: the benchmark fails.

What each timed span holds: loadgen times each request from before it is sent to its whole body read, so a latency
and the rps hold the HTTP round trip, parsing, predicting (or joining a label), keeping the rows (feedback on) and
answering. Not timed: the live metrics, which the server computes at scrape time (once per change of the window).
With mirroring on, a request's own span adds only the share's draw and, for the one in five drawn, a copy of its
body's top-level dict put on the queue (never a wait); the sending (4 sender tasks: aiohttp client, JSON encoding,
the agreement count) runs on the primary's loop between requests, so it shows in rps, p99 and the primary's CPU per
request, not in any one request's path. The shadow is a third busy process on the same 2 cores: rps and p99 here
include that contention, which a shadow in a pod of its own would not cause; CPU per request of the primary does
not. And the cost is that of what was sent, not of the share drawn: on 2026-12-07 a saturated primary sent ~130
mirrored requests a second of the ~390 drawn and dropped the rest once its queue was full (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import statistics
import tempfile
import textwrap
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import requests
from numpy.typing import NDArray
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from bench import serving
from bench.harness import BenchError, Result, load_average, say
from bench.loadgen import cpu_seconds
from driftline_runtime.server.main import live_evaluation, parse_args
from driftline_runtime.server.model import load_model
from driftline_runtime.server.tensors import decode_v2

NAME = "feedback"
DESCRIPTION = "ground truth: infer with feedback on vs off, feedback labels/s, live metrics vs scikit-learn"
DEFAULT_TRIALS = 3
NEEDS_CLUSTER = False
CONCURRENCY = 64
FEEDBACK_ROWS = 10_000
"""The server's default --feedback-max-rows: what "on" means."""
PREFILL = 2 * FEEDBACK_ROWS
"""Requests each on/off server takes before it is measured: the store full, and its memory of evicted ids too."""
IDS_PER_TRIAL = 16_000
"""Ids predicted for each trial's labels: 2.5 s of labels at 6,400 a second (2,300-6,700 here: at the top they run
out ~0.2 s early, which only shortens the measured span)."""
LABEL_SECONDS = 2.0
LABEL_WARMUP = 0.5
CHECK_ROWS = 2_000
WINDOW = CHECK_ROWS
MIN_SAMPLES = 100
TOLERANCE = 1e-9
TARGET = 0.05
"""The issue's bound on what feedback may cost inference."""
KEEP_CALLS = 40_000
"""keep() calls timed in-process per trial, after PREFILL untimed (the store full, as in the server measured)."""
MODEL = {"logreg": serving.MODELS["logreg"]}
ON, OFF, LABELS = "Driftline feedback on", "Driftline feedback off", "Driftline feedback labels"
MIRROR, SHADOW = "Driftline mirror on", "Driftline shadow"
MIRROR_SHARE = 0.2
MIRROR_QUEUE = 1000
"""The server's default --mirror-queue."""
MIRROR_JUDGED = ("rps", "p99")
"""What the issue bounds mirroring's cost on (CPU per request is reported beside them, not judged)."""
MIRROR_COUNTS = ("ok", "dropped", "error", "agree", "disagree", "predictions", "seconds")


# -- pure parts (unit-tested) --------------------------------------------------------------------------------------


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric `name` in a Prometheus exposition: (labels, value)."""
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def live_metrics(text: str) -> dict[str, float]:
    """The server's driftline_live_performance gauges, by metric name."""
    return {labels["metric"]: value for labels, value in samples(text, "driftline_live_performance")}


def gauge(text: str, name: str) -> float:
    """The one value of metric `name` (NaN when the server exports none)."""
    found = samples(text, name)
    return found[0][1] if found else math.nan


def differences(server: Mapping[str, float], ours: Mapping[str, float]) -> dict[str, float]:
    """|server - ours| for each of our metrics: infinite where the server's is missing or NaN (not a match)."""
    out = {}
    for name, value in ours.items():
        theirs = server.get(name, math.nan)
        out[name] = abs(theirs - value) if math.isfinite(theirs) else math.inf
    return out


def summarize(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> dict[str, float]:
    """(on, off) loadgen results of interleaved trials: medians of each side, and of the per-trial ratios on / off
    (pairs run back to back: their ratio moves less with the machine's load than either side does)."""

    def cpu(r: Mapping[str, Any]) -> float:
        return float(r["server_cpu_seconds"]) / r["requests"] if r.get("requests") else math.nan

    out = {}
    for key, value in (("rps", lambda r: float(r["rps"])), ("p99", lambda r: float(r["p99"])), ("cpu", cpu)):
        on, off = [value(p[0]) for p in pairs], [value(p[1]) for p in pairs]
        out[f"{key}_on"], out[f"{key}_off"] = statistics.median(on), statistics.median(off)
        out[f"{key}_ratio"] = statistics.median(a / b if b else math.nan for a, b in zip(on, off, strict=True))
    return out


def costs(summary: Mapping[str, float]) -> dict[str, float]:
    """What feedback costs the served requests, each as a fraction (0.05: 5 %), on vs off: rps lost, p99 added, the
    server's CPU per request added."""
    return {
        "rps": 1 - summary["rps_ratio"],
        "p99": summary["p99_ratio"] - 1,
        "cpu_per_request": summary["cpu_ratio"] - 1,
    }


def verdict(
    summary: Mapping[str, float], target: float = TARGET, judged: Sequence[str] | None = None
) -> dict[str, bool]:
    """Each cost (or each of those `judged`) under `target`."""
    return {name: cost < target for name, cost in costs(summary).items() if judged is None or name in judged}


def mirror_counts(text: str) -> dict[str, float]:
    """A server's mirroring counters and predictions, from its exposition: mirrored V2/V1 requests by result (ok,
    dropped, error; 0 for a result never counted), shadow rows agreeing with the primary's or not, rows predicted,
    and the seconds the shadow took to answer the mirrored requests, as the primary saw them (summed)."""
    out = dict.fromkeys(MIRROR_COUNTS, 0.0)
    for labels, value in samples(text, "driftline_shadow_requests_total"):
        if labels.get("kind") == "infer" and labels.get("result") in out:
            out[labels["result"]] += value
    for labels, value in samples(text, "driftline_shadow_rows_total"):
        if labels.get("result") in ("agree", "disagree"):
            out[labels["result"]] += value
    out["predictions"] = sum(value for _, value in samples(text, "driftline_predictions_total"))
    out["seconds"] = sum(value for _, value in samples(text, "driftline_shadow_request_duration_seconds_sum"))
    return out


def minus(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {key: after[key] - before.get(key, 0.0) for key in after}


def mirror_summary(spans: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mirroring runs' counters (each span: the primary's counts from before the run to its queue drained after it,
    "primary", and to the load's end, "under_load"; the load's wall seconds, "load_seconds"; the shadow's counts,
    "shadow", and CPU seconds, "shadow_cpu_seconds", to the queue drained): the sums over all of them, the share of
    the primary's requests offered (ok + dropped + error), the share dropped of those offered, the shadow's mean
    answer time as the primary saw it while the load ran and after (the queue draining), the rate sent while the
    load ran, the requests still queued when it ended (median), and the median over spans of the shadow's CPU per
    request it answered (spans where it answered none left out)."""
    total = {key: sum(span["primary"][key] for span in spans) for key in MIRROR_COUNTS}
    under = {key: sum(span["under_load"][key] for span in spans) for key in ("ok", "seconds")}
    offered = total["ok"] + total["dropped"] + total["error"]
    per_request = [
        span["shadow_cpu_seconds"] / span["shadow"]["predictions"] for span in spans if span["shadow"]["predictions"]
    ]
    return {
        **total,
        "offered": offered,
        "offered_share": offered / total["predictions"] if total["predictions"] else math.nan,
        "dropped_share": total["dropped"] / offered if offered else math.nan,
        "answer_seconds_under_load": under["seconds"] / under["ok"] if under["ok"] else math.nan,
        "answer_seconds_after": (total["seconds"] - under["seconds"]) / (total["ok"] - under["ok"])
        if total["ok"] > under["ok"]
        else math.nan,
        "sent_per_second_under_load": sum(span["under_load"]["ok"] for span in spans)
        / sum(span["load_seconds"] for span in spans)
        if spans
        else math.nan,
        "queued_at_load_end": statistics.median(span["primary"]["ok"] - span["under_load"]["ok"] for span in spans)
        if spans
        else math.nan,
        "shadow_cpu_per_request": statistics.median(per_request) if per_request else math.nan,
    }


def ratio(x: float) -> str:
    """A ratio close to 1, as the table prints it: three decimals (harness.ratio_text's two digits show 1.04 as 1x)."""
    return f"{x:.3f}x" if math.isfinite(x) else "-"


# -- the run -------------------------------------------------------------------------------------------------------


def infer_body(row: NDArray[Any], rid: str | None = None) -> dict[str, Any]:
    """A 1-row V2 request, with the client's own id when given."""
    body: dict[str, Any] = {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64"}]}
    body["inputs"][0]["data"] = row.tolist()
    return {"id": rid, **body} if rid is not None else body


def write_jsonl(path: Path, bodies: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    return path


def check_rows(rows: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Rows the model never saw as such (dataset rows, each value moved by up to a few %) and labels that are not all
    its answers (10 % flipped): every metric somewhere in its range, not at 1."""
    data = load_breast_cancer()
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(data.data), rows)
    x = data.data[pick] * (1 + rng.normal(0, 0.02, (rows, data.data.shape[1])))
    y = np.where(rng.random(rows) < 0.1, 1 - data.target[pick], data.target[pick])
    return x, y


def sklearn_metrics(
    truth: NDArray[Any], predicted: NDArray[Any], proba: NDArray[Any], classes: NDArray[Any]
) -> dict[str, float]:
    """scikit-learn's own, called directly (not through driftline_runtime.scoring, which the server uses)."""
    binary = len(classes) == 2
    out = {"accuracy": float(accuracy_score(truth, predicted))}
    if binary:
        out["f1"] = float(f1_score(truth, predicted, pos_label=classes[1]))
        out["roc_auc"] = float(roc_auc_score(truth == classes[1], proba[:, 1]))
    else:
        out["f1_macro"] = float(f1_score(truth, predicted, average="macro"))
        out["roc_auc"] = float(roc_auc_score(truth, proba, multi_class="ovr", labels=classes))
    out["log_loss"] = float(log_loss(truth, proba, labels=classes))
    return out


def keep_seconds(model_dir: Path, sha: str, body: bytes, calls: int = KEEP_CALLS) -> float:
    """Feedback's own work on a request, in-process: the server's LiveEvaluation.keep() for one served 1-row request
    (the request decoded by the server's decode_v2, the model's prediction), with "on"'s settings, after PREFILL
    calls (the store full, evicting); seconds a call. Fresh ids are made outside the timed span (a server makes one
    for every request, feedback or not)."""
    model = load_model(model_dir, serving.MODEL, "1", sha)
    argv = ["--model-dir", str(model_dir), "--model-name", serving.MODEL, "--model-version", "1"]
    args = parse_args([*argv, "--expected-sha256", sha, "--feedback-max-rows", str(FEEDBACK_ROWS)])  # as "on"
    evaluation = live_evaluation(model, args)
    if evaluation is None:
        raise BenchError("the feedback-on settings keep no predictions for this model")
    batch = decode_v2(json.loads(body), model)
    predicted = model.estimator.predict(batch.model_input)
    # As the server's record() calls it: with the request's matrix, which the store writes in one slice assignment
    # (without it, keep() stacks the 30 columns again, which the server never does).
    matrix = batch.model_input if isinstance(batch.model_input, np.ndarray) else None
    ids = [str(uuid.uuid4()) for _ in range(PREFILL + calls)]
    for rid in ids[:PREFILL]:
        evaluation.keep(rid, batch.columns, predicted, time.monotonic(), matrix)
    started = time.perf_counter()
    for rid in ids[PREFILL:]:
        evaluation.keep(rid, batch.columns, predicted, time.monotonic(), matrix)
    return (time.perf_counter() - started) / calls


def scrape(base: str) -> str:
    return requests.get(f"{base}/metrics", timeout=30).text


def correctness(base: str, model_dir: Path) -> dict[str, Any]:
    """CHECK_ROWS rows predicted and labelled one by one, then the server's live metrics against scikit-learn's."""
    x, truth = check_rows(CHECK_ROWS)
    http = requests.Session()
    http.trust_env = False
    received = []
    for i, row in enumerate(x):
        r = http.post(f"{base}/v2/models/{serving.MODEL}/infer", json=infer_body(row, f"check-{i}"), timeout=30)
        if r.status_code != 200 or r.json()["id"] != f"check-{i}":
            raise BenchError(f"infer check-{i} answered {r.status_code}: {r.text[:300]}")
        received.append(r.json()["outputs"][0]["data"][0])
    for i, label in enumerate(truth.tolist()):
        label_body = {"id": f"check-{i}", "truth": [label]}
        r = http.post(f"{base}/v2/models/{serving.MODEL}/feedback", json=label_body, timeout=30)
        if r.status_code != 200 or r.json() != {"accepted": 1}:
            raise BenchError(f"the label of check-{i} answered {r.status_code}: {r.text[:300]}")
    text = scrape(base)
    model = joblib.load(model_dir / "model.joblib")
    rows = pd.DataFrame(x, columns=model.feature_names_in_)  # the names it was fitted with: no warning
    predicted = np.asarray(received)
    proba = model.predict_proba(rows)
    ours = sklearn_metrics(truth, predicted, proba, model.classes_)
    server = live_metrics(text)
    diffs = differences(server, ours)
    window = gauge(text, "driftline_live_performance_samples")
    return {
        "rows": CHECK_ROWS,
        "window_samples": window,
        "server": server,
        "sklearn": ours,
        "differences": diffs,
        "max_difference": max(diffs.values()),
        "predictions_unlike_model": int(np.sum(predicted != model.predict(rows))),
        "labels": {labels["result"]: v for labels, v in samples(text, "driftline_feedback_rows_total")},
    }


def _check_load(what: str, got: Mapping[str, Any], sent: int | None = None) -> None:
    if got["errors"]:
        raise BenchError(
            f"{what}: {got['errors']} error(s) (non-2xx or transport) of {got['requests'] + got['errors']}"
        )
    if sent is not None and got["requests"] != sent:
        raise BenchError(f"{what}: {got['requests']} of {sent} requests answered")


@dataclass
class FeedbackResult(Result):
    trials: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    labels: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    mirror: dict[str, float] = field(default_factory=dict)
    """Mirror on / off: summarize() of the (MIRROR, ON) runs."""
    mirror_spans: list[dict[str, Any]] = field(default_factory=list)
    """Each mirroring run's counters (mirror_summary's spans)."""
    mirrored: dict[str, float] = field(default_factory=dict)
    """mirror_summary() of the spans."""
    mirror_after: dict[str, float] = field(default_factory=dict)
    """The primary's mirror_counts() after the whole run (its prefill included)."""

    def table(self) -> str:
        s, m = self.summary, self.mirror
        cells = [("measurement", "trials", "rps", "p50", "p99", "CPU/request")]
        n = str(len(self.trials))

        def runs(label: str, key: str, summary: Mapping[str, float], side: str) -> tuple[str, ...]:
            p50 = statistics.median(t[key]["p50"] for t in self.trials)
            return (
                label,
                n,
                f"{summary[f'rps_{side}']:.0f}",
                f"{p50 * 1000:.1f} ms",
                f"{summary[f'p99_{side}'] * 1000:.1f} ms",
                f"{summary[f'cpu_{side}'] * 1e6:.0f} us",
            )

        def ratios(label: str, summary: Mapping[str, float]) -> tuple[str, ...]:
            return (label, n, ratio(summary["rps_ratio"]), "", ratio(summary["p99_ratio"]), ratio(summary["cpu_ratio"]))

        cells.append(runs(f"infer, feedback on ({FEEDBACK_ROWS:,} rows kept)", ON, s, "on"))
        cells.append(runs("infer, feedback off", OFF, s, "off"))
        cells.append(ratios("  on / off (median of per-trial ratios)", s))
        cells.append(("  keep() alone, tight loop (a lower bound)", n, "", "", "", f"{s['keep_seconds'] * 1e6:.1f} us"))
        cells.append(runs(f"infer, mirror on ({MIRROR_SHARE:.0%} to a shadow; else = feedback on)", MIRROR, m, "on"))
        cells.append(ratios("  mirror on / off (off: the feedback-on runs)", m))
        shadow_cpu = self.mirrored["shadow_cpu_per_request"]
        cells.append(("  the shadow, per mirrored request it answered", n, "", "", "", f"{shadow_cpu * 1e6:.0f} us"))
        labels = self.labels
        cells.append(
            (
                "feedback labels, 1 row each" + (" (ids ran out)" if any(r["exhausted"] for r in labels) else ""),
                str(len(labels)),
                f"{statistics.median(r['rps'] for r in labels):.0f}",
                f"{statistics.median(r['p50'] for r in labels) * 1000:.1f} ms",
                f"{statistics.median(r['p99'] for r in labels) * 1000:.1f} ms",
                "",
            )
        )
        widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
        out = []
        for i, c in enumerate(cells):
            out.append(
                "  ".join([c[0].ljust(widths[0]), *(x.rjust(w) for x, w in zip(c[1:], widths[1:], strict=True))])
            )
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        title = f"== {self.benchmark} ({self.started}, {self.seconds:.0f}s; {self.extra.get('load', '')}) =="
        cost, met = costs(s), verdict(s)
        named = {"rps": "rps lost", "p99": "p99 added", "cpu_per_request": "CPU per request added"}
        cost_line = (
            f"  feedback's cost, target < {TARGET:.0%} (concurrency {CONCURRENCY}, 1 row; on vs off, median of "
            f"{len(self.trials)} interleaved pairs): "
            + "; ".join(f"{named[k]} {v * 100:+.1f} % ({'met' if met[k] else 'MISSED'})" for k, v in cost.items())
            + f". keep() alone in a loop: {s['keep_seconds'] / s['cpu_off'] * 100:.1f} % of a request's CPU (warm "
            "caches: in the server it costs more, and the store it fills slows the rest of the request)"
        )
        k = self.check
        metrics = ", ".join(
            f"{name} {k['server'].get(name, math.nan):.6g} (|diff| {d:.1e})" for name, d in k["differences"].items()
        )
        check = (
            f"  live metrics vs scikit-learn on {k['rows']:,} labelled rows (window {k['window_samples']:.0f}): "
            f"{metrics}; max |diff| {k['max_difference']:.1e} (<= {TOLERANCE:g}: "
            f"{'ok' if k['max_difference'] <= TOLERANCE else 'FAILED'})"
        )
        mcost, mmet = costs(m), verdict(m, judged=MIRROR_JUDGED)
        c = self.mirrored
        mirror_line = (
            f"  mirroring's cost, target < {TARGET:.0%} on rps and p99 ({MIRROR_SHARE:.0%} mirrored; mirror on vs off, "
            f"median of {len(self.trials)} interleaved pairs): "
            + "; ".join(
                f"{named[k]} {v * 100:+.1f} %" + (f" ({'met' if mmet[k] else 'MISSED'})" if k in mmet else "")
                for k, v in mcost.items()
            )
            + f". In the mirroring runs (warm-ups included): {c['predictions']:,.0f} requests, {c['offered']:,.0f} "
            f"mirrored ({c['offered_share']:.1%}): ok {c['ok']:,.0f}, dropped {c['dropped']:,.0f} "
            f"({c['dropped_share']:.1%}), error {c['error']:,.0f}; shadow rows agreeing {c['agree']:,.0f}, not "
            f"{c['disagree']:,.0f}; sent under load {c['sent_per_second_under_load']:.0f}/s (of "
            f"~{c['offered'] / sum(sp['load_seconds'] for sp in self.mirror_spans):.0f}/s offered), still queued at a "
            f"run's end {c['queued_at_load_end']:.0f} (median; queue {MIRROR_QUEUE}); the shadow's answer as the "
            f"primary saw it, mean: {c['answer_seconds_under_load'] * 1e3:.1f} ms under load, "
            f"{c['answer_seconds_after'] * 1e3:.1f} ms draining after it. After the whole "
            f"run (prefill included): ok {self.mirror_after['ok']:,.0f}, dropped {self.mirror_after['dropped']:,.0f}, "
            f"error {self.mirror_after['error']:,.0f}"
        )
        wrap = [textwrap.fill(line, width=118, subsequent_indent="    ") for line in (cost_line, mirror_line, check)]
        notes = [textwrap.fill(n, width=118, initial_indent="  * ", subsequent_indent="    ") for n in self.notes]
        return "\n".join([title, *out, *wrap, *notes])

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "summary": self.summary,
            "costs": costs(self.summary),
            "target_met": verdict(self.summary),
            "trials": self.trials,
            "labels": self.labels,
            "correctness": self.check,
            "mirror": {
                "summary": self.mirror,
                "costs": costs(self.mirror),
                "target_met": verdict(self.mirror, judged=MIRROR_JUDGED),
                "mirrored": self.mirrored,
                "spans": self.mirror_spans,
                "primary_after_run": self.mirror_after,
            },
        }


@dataclass(frozen=True)
class Bodies:
    """What the load generator sends, as files in the run's directory."""

    one: Path
    """The 1-row request every inference run sends (no id: the server makes one, as for most clients)."""
    prefill: Path
    ids: Path
    """1-row requests with ids of our own, one a line, to label."""
    labels: list[Path]
    """Each trial's labels, for its own ids."""


def write_bodies(workdir: Path, trials: int) -> Bodies:
    data = load_breast_cancer()
    one = workdir / "body-1.json"
    one.write_bytes(serving.body(1))
    prefill = write_jsonl(workdir / "prefill.jsonl", [json.loads(one.read_bytes())] * PREFILL)
    pick = np.arange(IDS_PER_TRIAL * trials) % len(data.data)
    ids = write_jsonl(workdir / "ids.jsonl", [infer_body(data.data[p], f"id-{i}") for i, p in enumerate(pick)])
    labels = []
    for t in range(trials):
        numbers = range(t * IDS_PER_TRIAL, (t + 1) * IDS_PER_TRIAL)
        lines = [{"id": f"id-{i}", "truth": [int(data.target[pick[i]])]} for i in numbers]
        labels.append(write_jsonl(workdir / f"labels-{t}.jsonl", lines))
    return Bodies(one, prefill, ids, labels)


def prepare(servers: Mapping[str, tuple[str, int]], bodies: Bodies, ids: int) -> None:
    """Each server answers; off takes no labels; then, unmeasured and at once, PREFILL requests to on, off and the
    mirroring primary, and the ids to label predicted; on and the mirroring primary then hold a full store, and the
    shadow has answered the mirrored share of the latter's."""
    for base, _ in servers.values():
        serving.check(base, bodies.one.read_bytes(), 1)
    off = servers[OFF][0]
    if requests.post(f"{off}/v2/models/{serving.MODEL}/feedback", json={"id": "x", "truth": 0}).status_code != 404:
        raise BenchError("the server started with --feedback-max-rows 0 takes labels")
    say(f"unmeasured: {PREFILL:,} requests to each of on, off and mirror on, {ids:,} predictions with ids to label")
    work = (
        (ON, bodies.prefill, PREFILL),
        (OFF, bodies.prefill, PREFILL),
        (MIRROR, bodies.prefill, PREFILL),
        (LABELS, bodies.ids, ids),
    )
    with ThreadPoolExecutor(len(work)) as pool:
        jobs = [
            (kind, sent, pool.submit(serving.load, servers[kind][0], path, CONCURRENCY, seconds=900, warmup=0))
            for kind, path, sent in work
        ]
        for kind, sent, job in jobs:
            _check_load(f"{kind}, unmeasured", job.result(), sent)
    for kind in (ON, MIRROR):
        held = gauge(scrape(servers[kind][0]), "driftline_feedback_held_rows")
        if held != FEEDBACK_ROWS:
            raise BenchError(f"{kind} holds {held} rows after {PREFILL} requests, not {FEEDBACK_ROWS}")
    counts = settled(servers[MIRROR][0])
    if not counts["ok"]:
        raise BenchError(f"{MIRROR} mirrored nothing to the shadow in {PREFILL} requests: {counts}")


def settled(base: str, timeout: float = 10.0) -> dict[str, float]:
    """The mirroring primary's counts once its queue has drained (two scrapes 0.2 s apart alike)."""
    last = mirror_counts(scrape(base))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = mirror_counts(scrape(base))
        if now == last:
            break
        last = now
    return last


def trial(
    servers: Mapping[str, tuple[str, int]], bodies: Bodies, t: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Trial t: off, on, mirror on (or the reverse: on always between the two it is compared with), then labels; the
    loadgen results, the mirroring run's counters, and the labels' loadgen result."""
    runs: dict[str, Any] = {}
    span: dict[str, Any] = {}
    for kind in (OFF, ON, MIRROR) if t % 2 == 0 else (MIRROR, ON, OFF):
        base, pid = servers[kind]
        if kind == MIRROR:
            shadow_base, shadow_pid = servers[SHADOW]
            before = (mirror_counts(scrape(base)), mirror_counts(scrape(shadow_base)), cpu_seconds(shadow_pid))
        started = time.monotonic()
        got = serving.load(base, bodies.one, CONCURRENCY, pid)
        _check_load(kind, got)
        runs[kind] = got
        cpu = got["server_cpu_seconds"] / got["requests"]
        say(f"trial {t + 1} {kind}: {got['rps']:.0f} rps, p99 {got['p99'] * 1e3:.1f} ms, {cpu * 1e6:.0f} us CPU/req")
        if kind == MIRROR:
            load_seconds = time.monotonic() - started
            under_load = mirror_counts(scrape(base))
            after = settled(base)
            span = {
                "primary": minus(after, before[0]),
                "under_load": minus(under_load, before[0]),
                "load_seconds": load_seconds,
                "shadow": minus(mirror_counts(scrape(shadow_base)), before[1]),
                "shadow_cpu_seconds": cpu_seconds(shadow_pid) - before[2],
            }
            p, u = span["primary"], span["under_load"]
            shadow_cpu = span["shadow_cpu_seconds"] / span["shadow"]["predictions"] * 1e6
            say(
                f"trial {t + 1} mirrored: ok {p['ok']:.0f}, dropped {p['dropped']:.0f}, error {p['error']:.0f} of "
                f"{p['predictions']:.0f} requests ({p['ok'] - span['under_load']['ok']:.0f} still queued at the load's "
                f"end); the shadow answered in {u['seconds'] / u['ok'] * 1e3:.1f} ms under load (mean, as the "
                "primary saw it), "
                f"{shadow_cpu:.0f} us CPU a request"
            )
    base = servers[LABELS][0]
    labels = serving.load(
        base, bodies.labels[t], CONCURRENCY, endpoint="feedback", seconds=LABEL_SECONDS, warmup=LABEL_WARMUP
    )
    _check_load("labels", labels)
    short = f" (its ids ran out: {labels['seconds']:.2f} s measured)" if labels["exhausted"] else ""
    say(f"trial {t + 1} labels: {labels['rps']:.0f} labels/s, p99 {labels['p99'] * 1e3:.1f} ms{short}")
    return runs, span, labels


def judge(check: Mapping[str, Any]) -> None:
    """The live metrics are scikit-learn's on the window of exactly the rows checked, and every label was taken."""
    wrong = []
    if not check["max_difference"] <= TOLERANCE:
        wrong.append(f"max |diff| {check['max_difference']:.3g} > {TOLERANCE:g}")
    if check["window_samples"] != WINDOW:
        wrong.append(f"the window holds {check['window_samples']} rows, not {WINDOW}")
    if check["labels_other_than_accepted"]:
        wrong.append(f"labels not accepted: {check['labels']}")
    if wrong:
        raise BenchError(
            f"live metrics: {'; '.join(wrong)} (server {check['server']}, scikit-learn {check['sklearn']})"
        )


def run(env: object, trials: int | None) -> Result:
    trials = trials or DEFAULT_TRIALS
    result = FeedbackResult(NAME, rows=[])
    result.extra["load"] = load_average()
    result.extra["setup"] = {
        "concurrency": CONCURRENCY,
        "rows_per_request": 1,
        "seconds": serving.SECONDS,
        "warmup": serving.WARMUP,
        "feedback_max_rows": FEEDBACK_ROWS,
        "prefill_requests": PREFILL,
        "label_seconds": LABEL_SECONDS,
        "label_warmup": LABEL_WARMUP,
        "ids_per_trial": IDS_PER_TRIAL,
        "check_rows": CHECK_ROWS,
        "tolerance": TOLERANCE,
        "mirror_share": MIRROR_SHARE,
        "mirror_queue": MIRROR_QUEUE,
    }
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-feedback-"))
    try:
        say("training the model with driftline-runtime train")
        model_dir, sha = serving.train(workdir, MODEL)["logreg"]
        bodies = write_bodies(workdir, trials)
        ids = IDS_PER_TRIAL * trials
        args = {
            ON: ["--feedback-max-rows", str(FEEDBACK_ROWS)],
            OFF: ["--feedback-max-rows", "0"],
            LABELS: [
                *("--feedback-max-rows", str(ids + CHECK_ROWS)),
                *("--performance-window-size", str(WINDOW), "--performance-min-samples", str(MIN_SAMPLES)),
            ],
        }
        with contextlib.ExitStack() as stack:
            servers = {
                kind: stack.enter_context(serving.server(kind, model_dir, sha, workdir, a)) for kind, a in args.items()
            }
            servers[SHADOW] = stack.enter_context(serving.server(SHADOW, model_dir, sha, workdir))
            mirror_args = [*args[ON], "--mirror-url", servers[SHADOW][0], "--mirror-share", str(MIRROR_SHARE)]
            mirror_args += ["--mirror-queue", str(MIRROR_QUEUE)]
            servers[MIRROR] = stack.enter_context(serving.server(MIRROR, model_dir, sha, workdir, mirror_args))
            prepare(servers, bodies, ids)
            keep = []
            for t in range(trials):
                runs, span, labels = trial(servers, bodies, t)
                keep.append(keep_seconds(model_dir, sha, bodies.one.read_bytes()))
                say(f"trial {t + 1} keep() in-process: {keep[-1] * 1e6:.1f} us a request")
                result.trials.append(runs)
                result.mirror_spans.append(span)
                result.labels.append(labels)
            result.mirror_after = mirror_counts(scrape(servers[MIRROR][0]))
            say(f"correctness: {CHECK_ROWS:,} rows predicted and labelled, live metrics vs scikit-learn")
            check = correctness(servers[LABELS][0], model_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check["labels_other_than_accepted"] = sum(v for k, v in check["labels"].items() if k != "accepted")
    result.check = check
    result.summary = {**summarize([(t[ON], t[OFF]) for t in result.trials]), "keep_seconds": statistics.median(keep)}
    result.extra["keep_seconds"] = keep
    result.mirror = summarize([(t[MIRROR], t[ON]) for t in result.trials])
    result.mirrored = mirror_summary(result.mirror_spans)
    say(f"live metrics: server {check['server']}, scikit-learn {check['sklearn']}")
    judge(check)
    result.notes.append(
        f"on / off: feedback on (the default, {FEEDBACK_ROWS:,} rows kept, the store full before measuring) vs "
        "--feedback-max-rows 0, both with drift on; rps and p99 of 4 s runs move by up to ±20 % on this shared "
        "machine, CPU per request (the server's /proc CPU time in the window / requests) less. Labels: each id "
        f"labelled once, every label accepted. Correctness: {CHECK_ROWS:,} rows labelled after "
        f"{sum(r['requests'] for r in result.labels):,} others (the window wrapped); predictions unlike "
        f"model.predict: {check['predictions_unlike_model']}."
    )
    result.notes.append(
        f"mirror on / off: the feedback-on server plus --mirror-share {MIRROR_SHARE} --mirror-queue {MIRROR_QUEUE} to "
        "a shadow of the same model on this machine, vs the feedback-on server's own runs (each trial off / on / "
        "mirror or the reverse); the shadow's work competes for the same 2 cores, so rps and p99 hold that too, the "
        "primary's CPU per request does not. Mirrored counts are read around each mirroring run, its warm-up "
        "included."
    )
    return result
