"""Serving throughput and latency: Driftline's model server against MLServer (with mlserver-sklearn), both for real.

- The same model.joblib for both: breast_cancer LogisticRegression and a 200-tree RandomForest, trained by
  `driftline-runtime train` (scikit-learn and joblib pinned equal in MLServer's virtualenv, bench/.venv-mlserver).
- One process each: Driftline's server is one aiohttp process; MLServer runs with `parallel_workers: 0`, inference in
  its single server process (its default adds one inference worker process; see docs/performance.md).
- The same client, a process of its own (bench/loadgen.py: aiohttp, closed loop), over loopback, Open Inference
  Protocol V2 (both speak it), single-row and 32-row requests, at concurrency 1, 8 and 64.
- Driftline with drift monitoring on (its default) and off (`--no-drift`): the cost of drift, judged on the share
  of the server's CPU time (/proc) that its drift work took (the server's own driftline_drift_cpu_seconds_total,
  read before and after each run); also on vs off, CPU time per request and rps, as the median of DRIFT_ROUNDS
  alternating runs, which differ by up to ±20% on a shared 2-core machine, with the CPU the server was given.

What each timed span holds: rps, p50 and p99 come from loadgen's measured window (each request timed from before it
is sent to its whole body read; only requests started in the window count), after 1 s of warm-up that both servers
get alike (a long-running server pays its warm-up once). Drift's binning happens inside that window (observe()
queues, and a flush runs at least every 0.5 s). Not in the rps figures: the drift statistics a /metrics scrape
computes (a snapshot), since nobody scrapes during a run; the drift-cost figure adds one scrape per run. The drift
cost is that of the default count window (1,000 rows), which under load bins at most a window's rows per flush; a
time window bins every row (bench/drift.py times that path).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

from bench import peers
from bench.harness import REPO, BenchError, Result, load_average, ratio_text, say
from bench.loadgen import cpu_seconds
from driftline.devcluster import procs

NAME = "serving"
DESCRIPTION = "model server rps and latency vs MLServer: same joblib model, one process each, V2, 1 and 32 rows"
DEFAULT_TRIALS = 1
NEEDS_CLUSTER = False
CONCURRENCY = (1, 8, 64)
BATCHES = (1, 32)
SECONDS = 4.0
WARMUP = 1.0
MODEL = "breast-cancer"
MODELS = {
    "logreg": ("sklearn.linear_model.LogisticRegression", {"max_iter": 5000}),
    "forest200": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 200, "random_state": 0}),
}
SERVERS = ("Driftline", "MLServer")
NO_DRIFT = "Driftline no drift"
DRIFT_ROUNDS = 3
DRIFT_CONCURRENCY = 64
DRIFT_TARGET = 0.05
LOADGEN = REPO / "bench" / "loadgen.py"


def train(workdir: Path, models: Mapping[str, tuple[str, dict[str, Any]]] = MODELS) -> dict[str, tuple[Path, str]]:
    """Each model trained by Driftline's own trainer: its directory and model.joblib's sha256."""
    out = {}
    runtime = Path(sys.executable).parent / "driftline-runtime"
    for name, (estimator, params) in models.items():
        d = workdir / name
        argv = [str(runtime), "train", "--dataset", "sklearn://breast_cancer", "--estimator", estimator]
        argv += ["--params", json.dumps(params), "--output-dir", str(d), "--termination-log", str(workdir / "term")]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise BenchError(f"training {name} failed: {done.stderr[-2000:]}")
        out[name] = (d, hashlib.sha256((d / "model.joblib").read_bytes()).hexdigest())
    return out


@contextlib.contextmanager
def server(kind: str, model_dir: Path, sha: str, workdir: Path, args: Sequence[str] = ()) -> Iterator[tuple[str, int]]:
    """A running server of `kind` for the model; yields its base URL and pid once it answers /v2/health/ready.
    Driftline's server takes `args` after its own (any kind but MLServer and NO_DRIFT names Driftline's server)."""
    port = procs.free_port()
    if kind == "MLServer":
        python = peers.ensure_venv(peers.MLSERVER)
        home = workdir / f"mlserver-{model_dir.name}"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        shutil.copy(model_dir / "model.joblib", home / "model.joblib")
        settings = {
            "http_port": port,
            "grpc_port": procs.free_port(),
            "metrics_port": procs.free_port(),
            "parallel_workers": 0,
            "debug": False,
            # No access log, as Driftline's server keeps none: logging every request is not what is measured.
            "logging_settings": {
                "version": 1,
                "disable_existing_loggers": False,
                "loggers": {"uvicorn.access": {"level": "WARNING"}, "mlserver": {"level": "WARNING"}},
            },
        }
        (home / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": MODEL,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
        }
        (home / "model-settings.json").write_text(json.dumps(model_settings))
        argv = [str(python.parent / "mlserver"), "start", str(home)]
    else:
        runtime = Path(sys.executable).parent / "driftline-runtime"
        argv = [str(runtime), "serve", "--model-dir", str(model_dir), "--model-name", MODEL, "--model-version", "1"]
        argv += ["--expected-sha256", sha, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        argv += ["--termination-log", str(workdir / "term")]
        argv += ["--no-drift"] if kind == NO_DRIFT else []
        argv += args
    log = (workdir / f"{kind.replace(' ', '-')}-{model_dir.name}.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
            time.sleep(0.3)
        yield base, proc.pid
    finally:
        procs.terminate([proc.pid], grace=10)
        proc.wait()
        log.close()


def drift_cpu_seconds(base: str) -> float:
    """The server's own account of the CPU time drift monitoring took (0 without drift)."""
    text = requests.get(f"{base}/metrics", timeout=30).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return next((s.value for s in samples if s.name == "driftline_drift_cpu_seconds_total"), 0.0)


def body(rows: int) -> bytes:
    x = load_breast_cancer().data[:rows]
    inputs = [{"name": "input-0", "shape": list(x.shape), "datatype": "FP64", "data": x.ravel().tolist()}]
    return json.dumps({"inputs": inputs}).encode()


def check(base: str, payload: bytes, rows: int) -> None:
    """The server answers the V2 request with `rows` predictions before it is measured."""
    r = requests.post(f"{base}/v2/models/{MODEL}/infer", data=payload, headers={"Content-Type": "application/json"})
    if r.status_code != 200 or len(r.json()["outputs"][0]["data"]) != rows:
        raise BenchError(f"{base} answered {r.status_code}: {r.text[:300]}")


def load(
    base: str,
    body_file: Path,
    concurrency: int,
    server_pid: int | None = None,
    *,
    endpoint: str = "infer",
    seconds: float = SECONDS,
    warmup: float = WARMUP,
) -> dict[str, Any]:
    """The load generator's result (bench/loadgen.py: a *.jsonl body file sends each line once) against the model's
    V2 `endpoint`; with `server_pid`, also the server's CPU seconds in the measured window."""
    url = f"{base}/v2/models/{MODEL}/{endpoint}"
    argv = [sys.executable, str(LOADGEN), url, str(body_file), str(concurrency), str(seconds), str(warmup)]
    argv += [str(server_pid)] if server_pid else []
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + warmup + 120, check=False)
    if done.returncode != 0:
        raise BenchError(f"loadgen failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass
class ServingResult(Result):
    lines: list[dict[str, Any]] = field(default_factory=list)
    drift_cost: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        header = ["model", "rows", "conc"]
        for s in SERVERS:
            header += [f"{s} rps", "p99"]
        header += ["rps vs MLServer", "p99 vs MLServer", "errors"]
        cells = [tuple(header)]
        for line in self.lines:
            r = line["results"]
            row = [line["model"], str(line["rows"]), str(line["concurrency"])]
            for s in SERVERS:
                row += [f"{r[s]['rps']:.0f}", f"{r[s]['p99'] * 1000:.1f} ms"]
            row += [ratio_text(line["rps_ratio"]), ratio_text(line["p99_ratio"])]
            row += [str(sum(int(r[s]["errors"]) for s in SERVERS))]
            cells.append(tuple(row))
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        out = []
        for n, c in enumerate(cells):
            out.append("  ".join(x.rjust(w) for x, w in zip(c, widths, strict=True)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        title = f"== {self.benchmark} ({self.started}, {self.seconds:.0f}s; {self.extra.get('load', '')}) =="
        cost = [
            f"  drift cost ({c['model']}, {c['rows']} row(s), concurrency {DRIFT_CONCURRENCY}): drift's own CPU, "
            f"{c['drift_cpu_share'] * 100:.1f}% of the server's (its driftline_drift_cpu_seconds_total; target < 5%: "
            f"{'met' if c['drift_cpu_share'] < DRIFT_TARGET else 'MISSED'}); on vs off, median of {DRIFT_ROUNDS} "
            f"alternating runs: CPU per request {c['cpu_per_request_on'] * 1e6:.0f} vs "
            f"{c['cpu_per_request_off'] * 1e6:.0f} us ({c['cpu_cost'] * 100:+.1f}%), {c['on_rps']:.0f} vs "
            f"{c['off_rps']:.0f} rps ({c['cost'] * 100:+.1f}% lost)"
            for c in self.drift_cost
        ]
        return "\n".join([title, *out, *cost, *(f"  * {n}" for n in self.notes)])

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "comparisons": self.lines, "drift_cost": self.drift_cost}


def run(env: object, trials: int | None) -> Result:
    result = ServingResult(NAME, rows=[])
    result.extra["load"] = load_average()
    result.extra["peers"] = peers.versions(peers.MLSERVER)
    result.extra["setup"] = {"seconds": SECONDS, "concurrency": list(CONCURRENCY), "rows": list(BATCHES)}
    peers.ensure_venv(peers.MLSERVER)
    workdir = Path(tempfile.mkdtemp(prefix="driftline-bench-serving-"))
    try:
        say("training the models with driftline-runtime train")
        models = train(workdir)
        bodies = {rows: workdir / f"body-{rows}.json" for rows in BATCHES}
        for rows, path in bodies.items():
            path.write_bytes(body(rows))
        measured: dict[tuple[str, int, int], dict[str, Any]] = {}
        for name, (model_dir, sha) in models.items():
            for kind in SERVERS:
                with server(kind, model_dir, sha, workdir) as (base, _):
                    for rows in BATCHES:
                        check(base, bodies[rows].read_bytes(), rows)
                        for conc in CONCURRENCY:
                            got = load(base, bodies[rows], conc)
                            p99 = got["p99"] * 1e3
                            say(f"{name} {kind} rows={rows} c={conc}: {got['rps']:.0f} rps, p99 {p99:.1f} ms")
                            measured.setdefault((name, rows, conc), {})[kind] = got
        logreg_dir, logreg_sha = models["logreg"]
        for rows in BATCHES:
            runs: dict[str, list[dict[str, Any]]] = {"Driftline": [], NO_DRIFT: []}
            for _ in range(DRIFT_ROUNDS):
                for kind in runs:
                    with server(kind, logreg_dir, logreg_sha, workdir) as (base, pid):
                        before = (cpu_seconds(pid), drift_cpu_seconds(base))
                        got = load(base, bodies[rows], DRIFT_CONCURRENCY, pid)
                        if kind == "Driftline":
                            spent = (cpu_seconds(pid) - before[0], drift_cpu_seconds(base) - before[1])
                            got["drift_cpu_share"] = spent[1] / spent[0]
                        runs[kind].append(got)
            on, off = (statistics.median(r["rps"] for r in runs[k]) for k in runs)
            # CPU per request: what drift adds to each request, whatever share of the CPU the server got meanwhile.
            cpu_on, cpu_off = (
                statistics.median(r["server_cpu_seconds"] / r["requests"] for r in runs[k]) for k in runs
            )
            share = statistics.median(r["drift_cpu_share"] for r in runs["Driftline"])
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
            d, m = r["Driftline"], r["MLServer"]
            result.lines.append(
                {
                    "model": name,
                    "rows": rows,
                    "concurrency": conc,
                    "results": r,
                    "rps_ratio": d["rps"] / m["rps"] if m["rps"] else None,
                    "p99_ratio": m["p99"] / d["p99"] if d["p99"] else None,
                }
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.notes.append(
        "rps vs MLServer: Driftline's rps / MLServer's (target >= 2x at concurrency 64); p99 vs MLServer: MLServer's "
        "p99 / Driftline's (> 1x: Driftline's is lower); drift cost: the share of the server's CPU that "
        "drift took (target < 5%), and on vs off, whose runs differ by up to ±20% on this shared machine."
    )
    return result
