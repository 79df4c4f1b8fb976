"""Ground truth on the request path: what keeping every served prediction for its labels costs inference, how fast the
feedback endpoint takes labels, and whether the live metrics the server exports are scikit-learn's, all in one run.

- The model: breast_cancer LogisticRegression trained by `driftline-runtime train` (bench/serving.py's), served by
  `driftline-runtime serve` processes (bench/serving.py's server()), no cluster, drift monitoring on (the default).
- Cost: two servers side by side, feedback on (`--feedback-max-rows 10000`, the default) and off
  (`--feedback-max-rows 0`), 1-row V2 requests at concurrency 64 from bench/loadgen.py (a process of its own, closed
  loop, 4 s after 1 s of warm-up), in interleaved trials (on/off, then off/on, ...). Before the first trial both take
  20,000 requests unmeasured: the "on" server's store is then full, every request pushing the oldest out (a
  long-running server's steady state, with its memory of evicted ids full too). Reported: rps, p99 and the server's
  CPU time per request (/proc, over the measured window), each on / off as the median of the per-trial ratios; and,
  beside them, the server's own LiveEvaluation.keep() timed alone in this process, in a loop (warm caches, a lower
  bound: measured inside a server on 2026-12-07 it took 31 us a call, not 11.5, and a 10,000-row store added nearly
  twice the CPU per request a 100-row one did: see docs/performance.md).
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
"""Ids predicted for each trial's labels: 2.5 s of labels at 6,400 a second (2,300-5,300 here)."""
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


def verdict(summary: Mapping[str, float], target: float = TARGET) -> dict[str, bool]:
    """Each cost under `target`."""
    return {name: cost < target for name, cost in costs(summary).items()}


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
    ids = [str(uuid.uuid4()) for _ in range(PREFILL + calls)]
    for rid in ids[:PREFILL]:
        evaluation.keep(rid, batch.columns, predicted, time.monotonic())
    started = time.perf_counter()
    for rid in ids[PREFILL:]:
        evaluation.keep(rid, batch.columns, predicted, time.monotonic())
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

    def table(self) -> str:
        s = self.summary
        cells = [("measurement", "trials", "rps", "p50", "p99", "CPU/request")]
        for side, key in (("on", ON), ("off", OFF)):
            runs = [t[key] for t in self.trials]
            cells.append(
                (
                    f"infer, feedback {side}" + (f" ({FEEDBACK_ROWS:,} rows kept)" if side == "on" else ""),
                    str(len(runs)),
                    f"{s[f'rps_{side}']:.0f}",
                    f"{statistics.median(r['p50'] for r in runs) * 1000:.1f} ms",
                    f"{s[f'p99_{side}'] * 1000:.1f} ms",
                    f"{s[f'cpu_{side}'] * 1e6:.0f} us",
                )
            )
        n = str(len(self.trials))
        cells.append(
            (
                "  on / off (median of per-trial ratios)",
                n,
                ratio(s["rps_ratio"]),
                "",
                ratio(s["p99_ratio"]),
                ratio(s["cpu_ratio"]),
            )
        )
        cells.append(("  keep() alone, tight loop (a lower bound)", n, "", "", "", f"{s['keep_seconds'] * 1e6:.1f} us"))
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
        wrap = [textwrap.fill(line, width=118, subsequent_indent="    ") for line in (cost_line, check)]
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
    """Each server answers; off takes no labels; then, unmeasured and at once, PREFILL requests to on and off and the
    ids to label predicted; on then holds a full store."""
    for base, _ in servers.values():
        serving.check(base, bodies.one.read_bytes(), 1)
    off = servers[OFF][0]
    if requests.post(f"{off}/v2/models/{serving.MODEL}/feedback", json={"id": "x", "truth": 0}).status_code != 404:
        raise BenchError("the server started with --feedback-max-rows 0 takes labels")
    say(f"unmeasured: {PREFILL:,} requests to each of on and off, {ids:,} predictions with ids to label")
    work = ((ON, bodies.prefill, PREFILL), (OFF, bodies.prefill, PREFILL), (LABELS, bodies.ids, ids))
    with ThreadPoolExecutor(len(work)) as pool:
        jobs = [
            (kind, sent, pool.submit(serving.load, servers[kind][0], path, CONCURRENCY, seconds=900, warmup=0))
            for kind, path, sent in work
        ]
        for kind, sent, job in jobs:
            _check_load(f"{kind}, unmeasured", job.result(), sent)
    held = gauge(scrape(servers[ON][0]), "driftline_feedback_held_rows")
    if held != FEEDBACK_ROWS:
        raise BenchError(f"the feedback-on server holds {held} rows after {PREFILL} requests, not {FEEDBACK_ROWS}")


def trial(servers: Mapping[str, tuple[str, int]], bodies: Bodies, t: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trial t: on and off (in turn first), then labels; the loadgen results."""
    pair: dict[str, Any] = {}
    for kind in (ON, OFF) if t % 2 == 0 else (OFF, ON):
        base, pid = servers[kind]
        got = serving.load(base, bodies.one, CONCURRENCY, pid)
        _check_load(kind, got)
        pair[kind] = got
        cpu = got["server_cpu_seconds"] / got["requests"]
        say(f"trial {t + 1} {kind}: {got['rps']:.0f} rps, p99 {got['p99'] * 1e3:.1f} ms, {cpu * 1e6:.0f} us CPU/req")
    base = servers[LABELS][0]
    labels = serving.load(
        base, bodies.labels[t], CONCURRENCY, endpoint="feedback", seconds=LABEL_SECONDS, warmup=LABEL_WARMUP
    )
    _check_load("labels", labels)
    short = f" (its ids ran out: {labels['seconds']:.2f} s measured)" if labels["exhausted"] else ""
    say(f"trial {t + 1} labels: {labels['rps']:.0f} labels/s, p99 {labels['p99'] * 1e3:.1f} ms{short}")
    return pair, labels


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
            prepare(servers, bodies, ids)
            keep = []
            for t in range(trials):
                pair, labels = trial(servers, bodies, t)
                keep.append(keep_seconds(model_dir, sha, bodies.one.read_bytes()))
                say(f"trial {t + 1} keep() in-process: {keep[-1] * 1e6:.1f} us a request")
                result.trials.append(pair)
                result.labels.append(labels)
            say(f"correctness: {CHECK_ROWS:,} rows predicted and labelled, live metrics vs scikit-learn")
            check = correctness(servers[LABELS][0], model_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check["labels_other_than_accepted"] = sum(v for k, v in check["labels"].items() if k != "accepted")
    result.check = check
    result.summary = {**summarize([(t[ON], t[OFF]) for t in result.trials]), "keep_seconds": statistics.median(keep)}
    result.extra["keep_seconds"] = keep
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
    return result
