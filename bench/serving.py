"""Serving throughput and latency: Driftline's model server against MLServer (with mlserver-sklearn), both for real,
and against the HTTP floor.

The servers, all spoken to over loopback in Open Inference Protocol V2 (all speak it):

- Driftline: its model server (`driftline-runtime serve`), one aiohttp process a model, its defaults (drift
  monitoring on). DRIFTLINE_VARIANTS adds more of its servers, each with its own flags, measured alike.
- MLServer: MLServer's defaults but for `parallel_workers: 0` (inference in its single server process; its default
  adds one inference worker process, see docs/performance.md), as before: one process against one.
- MLServer tuned: MLServer as its documentation advises for throughput: adaptive batching on (MLSERVER_BATCHING)
  and one inference worker a core (`parallel_workers` = os.cpu_count()). Its own metrics count the calls to its
  workers, each a batch: requests over calls shows the batching at work.
- floor: bench/floor.py, a bare endpoint on Driftline's HTTP stack (the same aiohttp, one process, the server's
  settings) answering a constant V2 response: what the HTTP layer alone allows. It has no model: measured once per
  rows, at concurrency 64 only.

The same model.joblib for every model server: breast_cancer LogisticRegression and a 200-tree RandomForest, trained
by `driftline-runtime train` (scikit-learn and joblib pinned equal in MLServer's virtualenv, bench/.venv-mlserver).
MLServer predicts with scikit-learn; Driftline's server answers a forest with the same trees compiled (Treelite),
which its trainer keeps beside model.joblib when they give the estimator's own answers (driftline_runtime/trees.py).
Each MLServer serves both models, each under its own name, from one start (an idle model costs it nothing; its tuned
start takes ~15 s). The same client, a process of its own (bench/loadgen.py: aiohttp, closed loop), single-row and
32-row requests, at concurrency 1 and 64.

What each timed span holds: rps, p50 and p99 come from loadgen's measured window (each request timed from before it
is sent to its whole body read; only requests started in the window count), after 1 s of warm-up that every server
gets alike (a long-running server pays its warm-up once; MLServer tuned fills its first batches there). Drift's
binning happens inside that window (observe() queues, and a flush runs at least every 0.5 s). Server CPU per request
(at concurrency 64) is the CPU time of the server's whole process tree (user + system, /proc; MLServer tuned's
workers included) over a span inside loadgen's measured window (its last SECONDS - TREE_SKIP seconds at the most),
per second, divided by the window's rps. Not in the rps figures: the drift statistics a /metrics scrape computes (a
snapshot), since nobody scrapes during a run; the drift-cost figure adds one scrape per run.

The cost of drift: Driftline with drift monitoring on (its default) and off (`--no-drift`), judged on the share of
the server's CPU time (/proc) that its drift work took (the server's own driftline_drift_cpu_seconds_total, read
before and after each run); also on vs off, CPU time per request and rps, as the median of DRIFT_ROUNDS alternating
runs, which differ by up to ±20% on a shared 2-core machine, with the CPU the server was given. It is the cost of the
default count window (1,000 rows), which under load bins at most a window's rows per flush; a time window bins every
row (bench/drift.py times that path).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

from bench import peers
from bench.harness import REPO, BenchError, Result, load_average, ratio_text, say
from bench.loadgen import cpu_seconds
from driftline.devcluster import procs

NAME = "serving"
DESCRIPTION = (
    "model server rps, latency and CPU vs MLServer (defaults and tuned) and the bare HTTP floor: same joblib model, "
    "V2, 1 and 32 rows"
)
DEFAULT_TRIALS = 1
NEEDS_CLUSTER = False
# Concurrency 8 is left out since there are four servers: bench serving must not take longer than with two (the
# whole `make bench` has a time budget).
CONCURRENCY = (1, 64)
BATCHES = (1, 32)
SECONDS = 4.0
WARMUP = 1.0
MODEL = "breast-cancer"
MODELS = {
    "logreg": ("sklearn.linear_model.LogisticRegression", {"max_iter": 5000}),
    "forest200": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 200, "random_state": 0}),
}
DRIFTLINE = "Driftline"
NO_DRIFT = "Driftline no drift"
MLSERVER = "MLServer"
MLSERVER_TUNED = "MLServer tuned"
FLOOR = "floor"
DRIFTLINE_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (("Driftline unbatched", ("--batch-max-rows", "0")),)
"""More Driftline servers measured like "Driftline" against every model: (name, its flags after its own), one line
each, e.g. ("Driftline unbatched", ("--batch-max-rows", "0")). Each adds its cells to the run's time."""
DRIFTLINE_ARGS: dict[str, tuple[str, ...]] = {DRIFTLINE: (), NO_DRIFT: ("--no-drift",), **dict(DRIFTLINE_VARIANTS)}
SERVERS = (DRIFTLINE, *(name for name, _ in DRIFTLINE_VARIANTS), MLSERVER, MLSERVER_TUNED)
"""The servers measured against every model, in the table's order (the floor comes after them)."""
MLSERVER_WORKERS = os.cpu_count() or 1
MLSERVER_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.05}
"""MLServer tuned's adaptive batching, in each model's model-settings.json (mlserver/batching/hooks.py turns it on
only when size > 1 and time > 0). Its documentation (user-guide/adaptive-batching) gives no values: the best depend
on the model and are found by experiment; the time is how long a batch may wait to fill. Up to 64 requests a batch:
all that concurrency 64 has in flight. 50 ms: the shortest wait tried that filled its batches at concurrency 64 for
both models. Tried on this 2-core machine on 2026-12-08 (1 row, concurrency 64, two or three 4 s runs each): 10 ms
sent 33-53 requests a call, logreg 1,100-1,200 rps, forest200 760-960; 50 ms 63-64 a call, 1,070-1,290 and 910-960;
400 ms (MLServer's own benchmark settings) 63-64, 1,120-1,230 and 960-1,040: the same within the noise, at the price
of the whole wait for a request alone (p50 at concurrency 1: 14 ms with 10 ms, 55 ms with 50 ms, 405 ms with 400)."""
AT_LOAD_ONLY = (FLOOR, "Driftline unbatched")
"""Measured at CPU_CONCURRENCY only: the floor is there for what a server could reach under load (and the run keeps to
its time budget)."""
CPU_CONCURRENCY = 64
"""Every server's CPU per request is measured in the runs at this concurrency."""
TREE_SKIP = 1.0
"""Seconds of loadgen's measured window the tree's CPU is not read in, at its start: loadgen starts its window only
once its own start (imports, ~0.5 s here) is done, so the span read is inside the window whatever that delay."""
DRIFT_ROUNDS = 3
DRIFT_CONCURRENCY = 64
DRIFT_TARGET = 0.05
LOADGEN = REPO / "bench" / "loadgen.py"


class Target(NamedTuple):
    """One of issue #23's targets, at concurrency TARGET_CONCURRENCY: `key` of its comparison line against `bound`."""

    model: str
    rows: int
    key: str
    op: str
    bound: float
    text: str


TARGET_CONCURRENCY = 64
TARGETS = (
    Target("logreg", 1, "rps_ratio", ">=", 3.0, "rps >= 3x MLServer's"),
    Target("logreg", 1, "rps_ratio_tuned", ">=", 2.0, "rps >= 2x MLServer tuned's"),
    Target("logreg", 1, "p99_ratio", ">", 1.0, "p99 lower than MLServer's"),
    Target("logreg", 1, "p99_ratio_tuned", ">", 1.0, "p99 lower than MLServer tuned's"),
    Target("logreg", 1, "cpu_per_request", "<=", 250e-6, "server CPU <= 250 us a request"),
    Target("logreg", 1, "rps_ratio_floor", ">=", 0.7, "rps >= 0.7x the floor's"),
    Target("forest200", 1, "rps_ratio", ">=", 20.0, "rps >= 20x MLServer's"),
    Target("forest200", 1, "rps_ratio_tuned", ">=", 2.0, "rps >= 2x MLServer tuned's"),
    Target("forest200", 1, "p99_ratio", ">", 1.0, "p99 lower than MLServer's"),
    Target("forest200", 1, "p99_ratio_tuned", ">", 1.0, "p99 lower than MLServer tuned's"),
    Target("forest200", 32, "rps_ratio", ">=", 5.0, "rps >= 5x MLServer's"),
)
_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, ">": operator.gt, "<=": operator.le}


def train(workdir: Path, models: Mapping[str, tuple[str, dict[str, Any]]] = MODELS) -> dict[str, tuple[Path, str]]:
    """Each model trained by Driftline's own trainer, all at once (nothing is measured meanwhile): its directory and
    model.joblib's sha256."""
    runtime = Path(sys.executable).parent / "driftline-runtime"
    running = {}
    for name, (estimator, params) in models.items():
        argv = [str(runtime), "train", "--dataset", "sklearn://breast_cancer", "--estimator", estimator]
        argv += ["--params", json.dumps(params), "--output-dir", str(workdir / name)]
        argv += ["--termination-log", str(workdir / f"term-{name}")]
        running[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in running.items():
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise BenchError(f"training {name} failed: {err[-2000:]}")
        d = workdir / name
        out[name] = (d, hashlib.sha256((d / "model.joblib").read_bytes()).hexdigest())
    return out


class Running(tuple[str, int]):
    """A server that answers: (base URL, pid of the root of its process tree), as callers unpack it, and for MLServer
    the URL of its metrics (a port of their own)."""

    metrics: str

    def __new__(cls, base: str, pid: int, metrics: str = "") -> Running:
        running = super().__new__(cls, (base, pid))
        running.metrics = metrics
        return running

    @property
    def base(self) -> str:
        return self[0]

    @property
    def pid(self) -> int:
        return self[1]


def _mlserver(home: Path, models: Mapping[str, Path], port: int, tuned: bool) -> tuple[list[str], str]:
    """MLServer's settings and, for each model (name -> directory of its model.joblib), a folder with its
    model-settings.json, written into `home`: its argv and its metrics URL."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    metrics_port = procs.free_port()
    settings = {
        "http_port": port,
        "grpc_port": procs.free_port(),
        "metrics_port": metrics_port,
        "metrics_dir": str(home / "metrics"),  # where its workers share their metrics; by default in its working dir
        "parallel_workers": MLSERVER_WORKERS if tuned else 0,
        "debug": False,
        # No access log, as Driftline's server keeps none: logging every request is not what is measured.
        "logging_settings": {
            "version": 1,
            "disable_existing_loggers": False,
            "loggers": {"uvicorn.access": {"level": "WARNING"}, "mlserver": {"level": "WARNING"}},
        },
    }
    (home / "settings.json").write_text(json.dumps(settings))
    for name, model_dir in models.items():
        (home / name).mkdir()
        shutil.copy(model_dir / "model.joblib", home / name / "model.joblib")
        model_settings = {
            "name": name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
            **(MLSERVER_BATCHING if tuned else {}),
        }
        (home / name / "model-settings.json").write_text(json.dumps(model_settings))
    python = peers.ensure_venv(peers.MLSERVER)
    return [str(python.parent / "mlserver"), "start", str(home)], f"http://127.0.0.1:{metrics_port}/metrics"


@contextlib.contextmanager
def server(
    kind: str,
    model_dir: Path | None,
    sha: str,
    workdir: Path,
    args: Sequence[str] = (),
    *,
    models: Mapping[str, Path] | None = None,
) -> Iterator[Running]:
    """A running server of `kind`, once it answers /v2/health/ready, serving the model in `model_dir` as MODEL.
    MLServer's kinds serve instead each of `models` (name -> directory) under its own name when given: one start for
    them all (MLServer tuned takes ~15 s to start its workers on 2 cores) where an idle model costs nothing. The floor
    serves none. Any other kind is a Driftline server, with DRIFTLINE_ARGS[kind] (if any) and `args` after its own
    flags."""
    port = procs.free_port()
    metrics, cwd = "", None
    if kind == FLOOR:
        argv, cwd = [sys.executable, "-m", "bench.floor", "--port", str(port)], REPO
    elif kind in (MLSERVER, MLSERVER_TUNED):
        if models is None:
            models = {MODEL: _needs(kind, model_dir)}
        home = workdir / f"{kind.replace(' ', '-')}-{'-'.join(models)}"
        argv, metrics = _mlserver(home, models, port, tuned=kind == MLSERVER_TUNED)
    else:
        runtime = Path(sys.executable).parent / "driftline-runtime"
        argv = [str(runtime), "serve", "--model-dir", str(_needs(kind, model_dir)), "--model-name", MODEL]
        argv += ["--model-version", "1", "--expected-sha256", sha, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--log-level", "warning", "--termination-log", str(workdir / "term")]
        argv += [*DRIFTLINE_ARGS.get(kind, ()), *args]
    served = "-".join(models) if models else model_dir.name if model_dir else ""
    log = (workdir / f"{'-'.join([kind.replace(' ', '-'), served] if served else [kind])}.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.trust_env = False
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise BenchError(f"{kind} exited {proc.returncode}; log: {log.name}")
            with contextlib.suppress(requests.RequestException):
                if http.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"{kind} not ready in 120s; log: {log.name}")
            time.sleep(0.1)
        yield Running(base, proc.pid, metrics)
    finally:
        procs.terminate([proc.pid], grace=10)
        proc.wait()
        # MLServer stops its inference workers itself; any it left behind are in the server's session (its group).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _needs(kind: str, model_dir: Path | None) -> Path:
    if model_dir is None:
        raise BenchError(f"{kind} needs a model")
    return model_dir


def drift_cpu_seconds(base: str) -> float:
    """The server's own account of the CPU time drift monitoring took (0 without drift)."""
    text = requests.get(f"{base}/metrics", timeout=30).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return next((s.value for s in samples if s.name == "driftline_drift_cpu_seconds_total"), 0.0)


def mlserver_calls(metrics: str, model: str) -> tuple[float, float]:
    """MLServer's own counts so far: (requests to `model` answered, calls sent to its inference workers, for any
    model). With adaptive batching a call carries a whole batch: the first over the second is the mean batch while
    only `model` is sent requests."""
    text = requests.get(metrics, timeout=30).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    answered = sum(
        s.value for s in samples if s.name == "model_infer_request_success_total" and s.labels.get("model") == model
    )
    calls = sum(s.value for s in samples if s.name == "parallel_request_queue_count")  # one observation a call
    return answered, calls


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and every process below it (MLServer's inference workers). This
    kernel has no /proc/<pid>/task/<tid>/children: the tree is found from every process's parent."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # gone meanwhile
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
        todo += children.get(p, [])
    return total


def _tree_cpu_in_window(pid: int, launched: float, seconds: float, warmup: float) -> tuple[float, float]:
    """The tree's CPU seconds, and the span they were spent in, from TREE_SKIP into loadgen's measured window (at the
    soonest it can start: `launched` + `warmup`) to the soonest the window can end."""
    skip = min(TREE_SKIP, seconds / 2)
    time.sleep(max(0.0, launched + warmup + skip - time.monotonic()))
    t0, cpu0 = time.monotonic(), tree_cpu_seconds(pid)
    time.sleep(max(0.0, launched + warmup + seconds - time.monotonic()))
    return tree_cpu_seconds(pid) - cpu0, time.monotonic() - t0


def body(rows: int) -> bytes:
    x = load_breast_cancer().data[:rows]
    inputs = [{"name": "input-0", "shape": list(x.shape), "datatype": "FP64", "data": x.ravel().tolist()}]
    return json.dumps({"inputs": inputs}).encode()


def check(base: str, payload: bytes, rows: int, model: str = MODEL) -> None:
    """The server answers the V2 request with `rows` predictions before it is measured."""
    url = f"{base}/v2/models/{model}/infer"
    r = requests.post(url, data=payload, headers={"Content-Type": "application/json"})
    if r.status_code != 200 or len(r.json()["outputs"][0]["data"]) != rows:
        raise BenchError(f"{base} answered {r.status_code}: {r.text[:300]}")


def answers_match(base: str, model_dir: Path, model: str = MODEL) -> str:
    """Every breast_cancer row sent at once as its own one-row request (so Driftline's server batches them, and a
    forest answers from its compiled trees): each answer must be the pickled estimator's own label for its row, and
    predict_proba equal to within 1e-12 (BLAS sums a batch in another order than a lone row). Says what it checked.
    """
    import concurrent.futures

    import joblib
    import numpy as np

    estimator = joblib.load(model_dir / "model.joblib")
    x = load_breast_cancer().data
    with warnings.catch_warnings():  # fitted on a DataFrame, asked with an array, as the server asks it
        warnings.simplefilter("ignore", UserWarning)
        expected, proba = estimator.predict(x), estimator.predict_proba(x)
    url = f"{base}/v2/models/{model}/infer"

    def ask(i: int) -> dict[str, Any]:
        one = {"name": "input-0", "shape": [1, x.shape[1]], "datatype": "FP64", "data": x[i].tolist()}
        wanted = [{"name": "predict"}, {"name": "predict_proba"}]
        got: dict[str, Any] = requests.post(url, json={"inputs": [one], "outputs": wanted}, timeout=60).json()
        return got

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(ask, range(len(x))))
    for i, answer in enumerate(answers):
        out = {o["name"]: o["data"] for o in answer["outputs"]}
        if out["predict"] != [expected[i]] or not np.allclose(out["predict_proba"], proba[i], rtol=0, atol=1e-12):
            raise BenchError(f"{base}: row {i} answered {out}, the estimator {expected[i]} {proba[i].tolist()}")
    samples = {s.name: s.value for f in text_string_to_metric_families(requests.get(f"{base}/metrics").text)
               for s in f.samples if s.name.startswith("driftline_inference_batch_requests_")}  # fmt: skip
    calls = samples.get("driftline_inference_batch_requests_count", 0.0)
    asked = 2 * len(x)  # predict and predict_proba for each request
    return f"{len(x)} concurrent one-row answers equal the estimator's ({calls:.0f} model calls for {asked} asks)"


def load(
    base: str,
    body_file: Path,
    concurrency: int,
    server_pid: int | None = None,
    *,
    tree_pid: int | None = None,
    model: str = MODEL,
    endpoint: str = "infer",
    seconds: float = SECONDS,
    warmup: float = WARMUP,
) -> dict[str, Any]:
    """The load generator's result (bench/loadgen.py: a *.jsonl body file sends each line once) against `model`'s V2
    `endpoint`; with `server_pid`, also that process's CPU seconds in the measured window (loadgen's own reading);
    with `tree_pid`, also "cpu_per_request": the CPU of that process's whole tree, per second of a span inside the
    window, over the window's rps."""
    url = f"{base}/v2/models/{model}/{endpoint}"
    argv = [sys.executable, str(LOADGEN), url, str(body_file), str(concurrency), str(seconds), str(warmup)]
    argv += [str(server_pid)] if server_pid else []
    launched = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tree = _tree_cpu_in_window(tree_pid, launched, seconds, warmup) if tree_pid else None
        out, err = proc.communicate(timeout=seconds + warmup + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise BenchError(f"loadgen failed: {err[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    if tree is not None:
        cpu, span = tree
        result |= {"tree_cpu_seconds": cpu, "tree_cpu_span": span}
        result["cpu_per_request"] = cpu / span / result["rps"] if result["rps"] and span > 0 else None
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _us(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e6:.0f} us"


@dataclass
class ServingResult(Result):
    lines: list[dict[str, Any]] = field(default_factory=list)
    drift_cost: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        columns = (*SERVERS, FLOOR)
        header = ["model", "rows", "conc"]
        for s in columns:
            header += [f"{'tuned' if s == MLSERVER_TUNED else s} rps", "p99"]
        header += ["rps vs MLServer", "vs tuned", "vs floor", "p99 vs MLServer", "vs tuned", "CPU/req", "errors"]
        cells = [tuple(header)]
        for line in self.lines:
            r = line["results"]
            row = [line["model"], str(line["rows"]), str(line["concurrency"])]
            for s in columns:
                row += [f"{r[s]['rps']:.0f}", f"{r[s]['p99'] * 1000:.1f} ms"] if s in r else ["", ""]
            row += [ratio_text(line[k]) for k in ("rps_ratio", "rps_ratio_tuned", "rps_ratio_floor")]
            row += [ratio_text(line[k]) for k in ("p99_ratio", "p99_ratio_tuned")]
            row += [_us(line["cpu_per_request"]), str(sum(int(x["errors"]) for x in r.values()))]
            cells.append(tuple(row))
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        out = []
        for n, c in enumerate(cells):
            out.append("  ".join(x.rjust(w) for x, w in zip(c, widths, strict=True)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        title = f"== {self.benchmark} ({self.started}, {self.seconds:.0f}s; {self.extra.get('load', '')}) =="
        cpu = [
            f"  server CPU per request at concurrency {CPU_CONCURRENCY} ({line['model']}, {line['rows']} row(s); "
            "the whole process tree): "
            + ", ".join(
                f"{s} {_us(r['cpu_per_request'])}"
                for s, r in line["results"].items()
                if r.get("cpu_per_request") is not None
            )
            for line in self.lines
            if line["concurrency"] == CPU_CONCURRENCY
        ]
        batches = [
            f"{line['model']} {line['rows']} row(s) c={line['concurrency']}: {r['requests_per_call']:.1f}"
            for line in self.lines
            if (r := line["results"].get(MLSERVER_TUNED, {})).get("requests_per_call") is not None
        ]
        batching = (
            [f"  {MLSERVER_TUNED}, requests a call to its workers (its own metrics): {', '.join(batches)}"]
            if batches
            else []
        )
        targets = [
            f"  target, {t['model']} {t['rows']} row(s) at concurrency {TARGET_CONCURRENCY}: {t['text']}: "
            f"{_us(t['value']) if t['key'] == 'cpu_per_request' else ratio_text(t['value']) or '-'} "
            f"{'met' if t['met'] else 'MISSED'}"
            for t in self.targets
        ]
        cost = [
            f"  drift cost ({c['model']}, {c['rows']} row(s), concurrency {DRIFT_CONCURRENCY}): drift's own CPU, "
            f"{c['drift_cpu_share'] * 100:.1f}% of the server's (its driftline_drift_cpu_seconds_total; target < 5%: "
            f"{'met' if c['drift_cpu_share'] < DRIFT_TARGET else 'MISSED'}); on vs off, median of {DRIFT_ROUNDS} "
            f"alternating runs: CPU per request {c['cpu_per_request_on'] * 1e6:.0f} vs "
            f"{c['cpu_per_request_off'] * 1e6:.0f} us ({c['cpu_cost'] * 100:+.1f}%), {c['on_rps']:.0f} vs "
            f"{c['off_rps']:.0f} rps ({c['cost'] * 100:+.1f}% lost)"
            for c in self.drift_cost
        ]
        return "\n".join([title, *out, *cpu, *batching, *targets, *cost, *(f"  * {n}" for n in self.notes)])

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "comparisons": self.lines,
            "targets": self.targets,
            "drift_cost": self.drift_cost,
        }


def measure(kind: str, running: Running, model: str, body_file: Path, concurrency: int) -> dict[str, Any]:
    """One load run against a server; at CPU_CONCURRENCY with its tree's CPU per request, and for MLServer tuned
    with the requests each call to its workers carried, by its own metrics."""
    at_cpu = concurrency == CPU_CONCURRENCY
    before = mlserver_calls(running.metrics, model) if kind == MLSERVER_TUNED else None
    pid = running.pid if at_cpu else None
    got = load(running.base, body_file, concurrency, pid, tree_pid=pid, model=model)
    if before is not None:
        answered, calls = (b - a for a, b in zip(before, mlserver_calls(running.metrics, model), strict=True))
        got |= {"answered": answered, "calls": calls, "requests_per_call": answered / calls if calls else None}
    return got


def compare(name: str, rows: int, conc: int, r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One line of the table: every server's result and Driftline's ratios to the others (rps: Driftline's over
    theirs; p99: theirs over Driftline's, > 1 when Driftline's is lower); None where one was not measured."""
    d = r[DRIFTLINE]

    def of(kind: str, key: str) -> float | None:
        return r[kind][key] if kind in r else None

    return {
        "model": name,
        "rows": rows,
        "concurrency": conc,
        "results": r,
        "rps_ratio": _ratio(d["rps"], of(MLSERVER, "rps")),
        "rps_ratio_tuned": _ratio(d["rps"], of(MLSERVER_TUNED, "rps")),
        "rps_ratio_floor": _ratio(d["rps"], of(FLOOR, "rps")),
        "p99_ratio": _ratio(of(MLSERVER, "p99"), d["p99"]),
        "p99_ratio_tuned": _ratio(of(MLSERVER_TUNED, "p99"), d["p99"]),
        "cpu_per_request": d.get("cpu_per_request"),
    }


def judge(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target met or missed (missed, too, when what it needs was not measured)."""
    out = []
    for t in TARGETS:
        line = next(
            (x for x in lines if (x["model"], x["rows"], x["concurrency"]) == (t.model, t.rows, TARGET_CONCURRENCY)),
            None,
        )
        value = line.get(t.key) if line else None
        out.append({**t._asdict(), "value": value, "met": value is not None and _OPS[t.op](value, t.bound)})
    return out


def concurrencies(kind: str) -> tuple[int, ...]:
    return (CPU_CONCURRENCY,) if kind in AT_LOAD_ONLY else CONCURRENCY


def run(env: object, trials: int | None) -> Result:
    result = ServingResult(NAME, rows=[])
    result.extra["load"] = load_average()
    result.extra["peers"] = peers.versions(peers.MLSERVER)
    result.extra["setup"] = {
        "seconds": SECONDS,
        "warmup": WARMUP,
        "rows": list(BATCHES),
        "concurrency": {kind: list(concurrencies(kind)) for kind in (*SERVERS, FLOOR)},
        "driftline_args": DRIFTLINE_ARGS,
        "mlserver_tuned": {"parallel_workers": MLSERVER_WORKERS, **MLSERVER_BATCHING},
        "cpu_concurrency": CPU_CONCURRENCY,
    }
    peers.ensure_venv(peers.MLSERVER)
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-serving-"))
    try:
        say("training the models with driftline-runtime train")
        models = train(workdir)
        bodies = {rows: workdir / f"body-{rows}.json" for rows in BATCHES}
        for rows, path in bodies.items():
            path.write_bytes(body(rows))
        measured: dict[tuple[str, int, int], dict[str, Any]] = {}

        def measure_all(kind: str, running: Running, name: str, served_as: str) -> None:
            """Every cell of `kind` for model `name` (served as `served_as`), into `measured`."""
            for rows in BATCHES:
                # The floor's answer is one row's, whatever was sent.
                check(running.base, bodies[rows].read_bytes(), 1 if kind == FLOOR else rows, served_as)
                if kind in DRIFTLINE_ARGS and rows == BATCHES[0]:
                    say(f"{kind} {name}: {answers_match(running.base, models[name][0])}")
                for conc in concurrencies(kind):
                    got = measure(kind, running, served_as, bodies[rows], conc)
                    extra = f", CPU {_us(got['cpu_per_request'])} a request" if got.get("cpu_per_request") else ""
                    extra += f", {got['requests_per_call']:.1f} a call" if got.get("requests_per_call") else ""
                    p99 = got["p99"] * 1e3
                    what = kind if name == kind else f"{name} {kind}"
                    say(f"{what} rows={rows} c={conc}: {got['rps']:.0f} rps, p99 {p99:.1f} ms{extra}")
                    measured.setdefault((name, rows, conc), {})[kind] = got

        for kind in SERVERS:
            if kind in (MLSERVER, MLSERVER_TUNED):
                with server(kind, None, "", workdir, models={n: d for n, (d, _) in models.items()}) as running:
                    for name in models:
                        measure_all(kind, running, name, name)
            else:
                for name, (model_dir, sha) in models.items():
                    with server(kind, model_dir, sha, workdir) as running:
                        measure_all(kind, running, name, MODEL)
        with server(FLOOR, None, "", workdir) as running:
            measure_all(FLOOR, running, FLOOR, MODEL)
        logreg_dir, logreg_sha = models["logreg"]
        for rows in BATCHES:
            runs: dict[str, list[dict[str, Any]]] = {DRIFTLINE: [], NO_DRIFT: []}
            for _ in range(DRIFT_ROUNDS):
                for kind in runs:
                    with server(kind, logreg_dir, logreg_sha, workdir) as (base, pid):
                        before = (cpu_seconds(pid), drift_cpu_seconds(base))
                        got = load(base, bodies[rows], DRIFT_CONCURRENCY, pid)
                        if kind == DRIFTLINE:
                            spent = (cpu_seconds(pid) - before[0], drift_cpu_seconds(base) - before[1])
                            got["drift_cpu_share"] = spent[1] / spent[0]
                        runs[kind].append(got)
            on, off = (statistics.median(r["rps"] for r in runs[k]) for k in runs)
            # CPU per request: what drift adds to each request, whatever share of the CPU the server got meanwhile.
            cpu_on, cpu_off = (
                statistics.median(r["server_cpu_seconds"] / r["requests"] for r in runs[k]) for k in runs
            )
            share = statistics.median(r["drift_cpu_share"] for r in runs[DRIFTLINE])
            say(
                f"drift cost, {rows} row(s): {on:.0f} rps on, {off:.0f} off; CPU per request {cpu_on * 1e6:.0f} us on, "
                f"{cpu_off * 1e6:.0f} us off; drift's own CPU {share * 100:.1f}% "
                f"({ {k: [round(r['rps']) for r in v] for k, v in runs.items()} })"
            )
            result.drift_cost.append(
                {
                    "model": "logreg",
                    "rows": rows,
                    "on_rps": on,
                    "off_rps": off,
                    "cost": 1 - on / off,
                    "cpu_per_request_on": cpu_on,
                    "cpu_per_request_off": cpu_off,
                    "cpu_cost": cpu_on / cpu_off - 1,
                    "drift_cpu_share": share,
                    "runs": runs,
                }
            )
        for (name, rows, conc), r in measured.items():
            if name == FLOOR:
                continue
            if (floor := measured.get((FLOOR, rows, conc))) is not None:
                r |= floor  # the floor has no model: the same run on every model's line
            result.lines.append(compare(name, rows, conc, r))
        result.targets = judge(result.lines)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.notes += [
        "rps vs MLServer / tuned / floor: Driftline's rps over theirs; p99 vs MLServer / tuned: their p99 over "
        f"Driftline's (> 1x: Driftline's is lower); CPU/req: Driftline's server CPU a request at concurrency "
        f"{CPU_CONCURRENCY}.",
        f"{MLSERVER}: parallel_workers 0, no batching. {MLSERVER_TUNED}: parallel_workers {MLSERVER_WORKERS} (the "
        f"cores), adaptive batching {MLSERVER_BATCHING} (alone, a request waits max_batch_time for others). "
        f"{FLOOR}: bare aiohttp on Driftline's stack answering a constant, at concurrency {CPU_CONCURRENCY} only.",
        "targets (#23), at concurrency 64: logreg 1 row >= 3x MLServer's and >= 2x tuned's rps, p99 lower than both, "
        "<= 250 us of server CPU a request, >= 0.7x the floor's rps; forest200 1 row >= 20x MLServer's and >= 2x "
        "tuned's rps, p99 lower than both; forest200 32 rows >= 5x MLServer's rps.",
        "drift cost: the share of the server's CPU that drift took (target < 5%), and on vs off, whose runs differ by "
        "up to ±20% on this shared machine.",
    ]
    return result
