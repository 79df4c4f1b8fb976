"""`driftline-runtime serve`: verify and load the model, serve it, shut down gracefully on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from aiohttp import web
from prometheus_client import disable_created_metrics

from driftline_runtime import signing
from driftline_runtime.drift import CountWindow, DriftMonitor, TimeWindow, Window
from driftline_runtime.feedback import LiveEvaluation
from driftline_runtime.server import guard
from driftline_runtime.server.app import create_app
from driftline_runtime.server.handling import ServerState
from driftline_runtime.server.metrics import ServerMetrics
from driftline_runtime.server.mirror import Mirror
from driftline_runtime.server.model import ModelLoadError, ServedModel, load_model
from driftline_runtime.server.predict import scores

log = logging.getLogger("driftline.server")
DEFAULT_BATCH_ROWS = 256
MAX_BATCH_WAIT_SECONDS = 1.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="driftline-runtime serve", description="Serve a verified scikit-learn model.")
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--model-name", required=True)
    p.add_argument("--model-version", required=True)
    p.add_argument("--expected-sha256", required=True, help="refuse to start unless model.joblib hashes to this")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (logged at start)")
    p.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024)
    p.add_argument("--termination-log", type=Path, default=Path("/dev/termination-log"))
    p.add_argument("--drift-window-size", type=int, default=1000, help="rows in the count window")
    p.add_argument("--drift-window-seconds", type=float, default=0, help="> 0 switches to a time window")
    p.add_argument("--drift-min-samples", type=int, default=100, help="below this, drift gauges are NaN")
    p.add_argument(
        "--no-drift", dest="drift", action="store_false", help="serve without drift monitoring (no drift metrics)"
    )
    p.add_argument(
        "--feedback-max-rows", type=int, default=10_000, help="predicted rows kept for their labels (0: none)"
    )
    p.add_argument(
        "--feedback-max-age-seconds", type=float, default=3600, help="a prediction takes labels this long at most"
    )
    p.add_argument("--performance-window-size", type=int, default=1000, help="labelled rows live performance is over")
    p.add_argument(
        "--performance-min-samples", type=int, default=100, help="below this, live performance gauges are NaN"
    )
    p.add_argument("--mirror-url", default="", help="a shadow server to mirror a share of requests and labels to")
    p.add_argument("--mirror-share", type=float, default=0.1, help="share of requests mirrored, in (0, 1]")
    p.add_argument("--mirror-queue", type=int, default=1000, help="mirrored requests waiting; past this, dropped")
    p.add_argument(
        "--batch-max-rows",
        type=int,
        default=DEFAULT_BATCH_ROWS,
        help="concurrent requests' rows are predicted together, up to this many in one call (0: each request alone)",
    )
    p.add_argument(
        "--batch-max-wait-seconds",
        type=float,
        default=0,
        help="how long a request may wait for others to batch with (0: only those that arrived with it)",
    )
    p.add_argument("--drain-seconds", type=float, default=0, help="keep serving, unready, this long after SIGTERM")
    p.add_argument("--head-timeout", type=float, default=10, help="seconds for a request's status line and headers")
    p.add_argument("--body-timeout", type=float, default=30, help="seconds for a request's body, once its head came")
    p.add_argument("--idle-timeout", type=float, default=75, help="seconds a keep-alive connection may stay idle")
    p.add_argument("--max-connections", type=int, default=1024, help="past this, a new connection gets a 503")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    for name in ("max_body_bytes", "drift_window_size", "port", "max_connections", "performance_window_size"):
        if getattr(args, name) < (0 if name == "port" else 1):
            p.error(f"--{name.replace('_', '-')} is out of range")
    if min(args.head_timeout, args.body_timeout, args.idle_timeout) <= 0:
        p.error("--head-timeout, --body-timeout and --idle-timeout must be positive")
    if min(args.drift_min_samples, args.drift_window_seconds, args.drain_seconds, args.feedback_max_rows) < 0:
        p.error(
            "--drift-min-samples, --drift-window-seconds, --drain-seconds and --feedback-max-rows must not be negative"
        )
    if args.batch_max_rows < 0 or not 0 <= args.batch_max_wait_seconds <= MAX_BATCH_WAIT_SECONDS:
        p.error(f"--batch-max-rows must not be negative, --batch-max-wait-seconds in [0, {MAX_BATCH_WAIT_SECONDS:g}]")
    if not 0 < args.mirror_share <= 1 or args.mirror_queue < 1:
        p.error("--mirror-share must be in (0, 1] and --mirror-queue positive")
    if args.mirror_url and not args.mirror_url.startswith(("http://", "https://")):
        p.error("--mirror-url must be an http:// or https:// URL")
    if args.feedback_max_age_seconds <= 0 or args.performance_min_samples < 1:
        p.error("--feedback-max-age-seconds and --performance-min-samples must be positive")
    return args


def write_termination_log(path: Path, message: str) -> None:
    """Kubernetes shows this file as the container's termination message; skip it where there is no such place."""
    if path.parent.is_dir():
        try:
            path.write_text(message + "\n", encoding="utf-8")
        except OSError as e:
            log.warning("could not write the termination log %s: %s", path, e)


def build_state(model: ServedModel, args: argparse.Namespace) -> ServerState:
    total = model.reference.total_bins
    window: Window
    if args.drift_window_seconds > 0:
        window = TimeWindow(args.drift_window_seconds, total)
    else:
        window = CountWindow(args.drift_window_size, len(model.reference.columns), total)
    monitor = DriftMonitor(model.reference, window, args.drift_min_samples) if args.drift else None
    evaluation = live_evaluation(model, args)
    metrics = ServerMetrics(
        model.name, model.version, model.sha256, model.framework_version, monitor, evaluation, model.predictor_kind
    )
    return ServerState(
        model=model,
        monitor=monitor,
        metrics=metrics,
        max_body_bytes=args.max_body_bytes,
        body_seconds=args.body_timeout,
        limits=guard.Limits(args.head_timeout, args.max_connections),
        evaluation=evaluation,
        mirror=Mirror(
            args.mirror_url,
            model.name,
            args.mirror_share,
            args.mirror_queue,
            metrics.mirror(),
            classification=model.task == "classification",
        )
        if args.mirror_url
        else None,
        batch_max_rows=args.batch_max_rows,
        batch_max_wait=args.batch_max_wait_seconds,
    )


def live_evaluation(model: ServedModel, args: argparse.Namespace) -> LiveEvaluation | None:
    """None when no rows are kept, or for a classifier whose classes are unknown (no label could be checked)."""
    if args.feedback_max_rows == 0 or (model.task == "classification" and not model.classes):
        return None
    return LiveEvaluation(
        model.task,
        model.classes,
        [f.numeric for f in model.features],
        lambda columns: scores(model, columns),
        args.feedback_max_rows,
        args.feedback_max_age_seconds,
        args.performance_window_size,
        args.performance_min_samples,
    )


async def serve(state: ServerState, host: str, port: int, drain_seconds: float, idle_seconds: float = 75) -> int:
    runner = web.AppRunner(create_app(state), access_log=None, shutdown_timeout=30.0, keepalive_timeout=idle_seconds)
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None and state.limits is not None
    try:
        # Not web.TCPSite: each connection's protocol is wrapped by the guard (server/guard.py).
        listener = await loop.create_server(state.limits.factory(runner.server), host, port, reuse_address=True)
    except OSError as e:
        await runner.cleanup()
        raise ModelLoadError(f"cannot listen on {host}:{port}: {e}") from e
    for sock in listener.sockets:
        log.info("listening on http://%s:%s", *sock.getsockname()[:2])
    log.info("serving model %s version %s (sha256 %s)", state.model.name, state.model.version, state.model.sha256)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    # Unready at once so the Service stops routing here; then finish what is in flight.
    state.ready = False
    log.info("shutting down: readiness is false, draining %.1fs, then finishing in-flight requests", drain_seconds)
    if drain_seconds:
        await asyncio.sleep(drain_seconds)
    listener.close()
    await runner.cleanup()
    log.info("stopped")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        trusted = os.environ.get(signing.TRUSTED_KEYS_ENV)  # set, even empty: only signed artifacts are served
        keys = None if trusted is None else signing.public_keys(trusted)
        model = load_model(args.model_dir, args.model_name, args.model_version, args.expected_sha256, keys)
        state = build_state(model, args)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # one series per counter is enough; this process owns its registry
        return asyncio.run(serve(state, args.host, args.port, args.drain_seconds, args.idle_timeout))
    except ModelLoadError as e:
        log.error("refusing to start: %s", e)
        write_termination_log(args.termination_log, f"driftline-runtime serve: {e}")
        return 1
