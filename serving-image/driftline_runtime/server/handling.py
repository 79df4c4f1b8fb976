"""What every protocol's handlers share: the server's state, JSON in and out, error rendering, and the inference
bookkeeping. The protocol modules (v1, v2) build on this; app.py puts them together."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from numpy.typing import NDArray

from driftline_runtime.drift import DriftMonitor
from driftline_runtime.feedback import LiveEvaluation
from driftline_runtime.server import guard
from driftline_runtime.server.batching import Batcher
from driftline_runtime.server.errors import ApiError, describe
from driftline_runtime.server.inputs import Batch
from driftline_runtime.server.metrics import CONTENT_TYPE, ServerMetrics
from driftline_runtime.server.mirror import Mirror
from driftline_runtime.server.model import ServedModel

log = logging.getLogger("driftline.server")
# Bodies are parsed as JSON whatever these say: curl -d sends form-urlencoded, some clients text/plain.
JSON_CONTENT_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


@dataclass
class ServerState:
    model: ServedModel
    monitor: DriftMonitor | None
    """None with --no-drift."""
    metrics: ServerMetrics
    max_body_bytes: int
    ready: bool = True
    body_seconds: float = 30.0
    """A request's body must arrive within this, once its head has (a half-sent body is not waited for)."""
    limits: guard.Limits | None = None
    """The connection guard's, when the server runs behind it (main.serve)."""
    evaluation: LiveEvaluation | None = None
    """Predictions kept for their labels and the live performance; None with --feedback-max-rows 0."""
    mirror: Mirror | None = None
    """Where a share of requests (and their labels) is mirrored: a shadow challenger's server, with --mirror-url."""
    batch_max_rows: int = 0
    """Concurrent requests' rows predicted in one call, up to this many (--batch-max-rows); 0: each request alone."""
    batch_max_wait: float = 0.0
    """How long a request may wait for others to share its call (--batch-max-wait-seconds)."""
    batcher: Batcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.model, self.batch_max_rows, self.batch_max_wait, self.metrics.observe_batch)

    async def predict(self, batch: Batch, method: str) -> NDArray[Any]:
        """The model's `method` on the batch's rows, in a call shared with concurrent requests where batching is on."""
        return await self.batcher.predict(batch, method)


STATE = web.AppKey("driftline", ServerState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        content_type="application/json",
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    response = json_response({"error": message}, status)
    if headers:
        response.headers.update(headers)
    return response


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if isinstance(e, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(e.allowed_methods))
            message = f"method {request.method} is not allowed on {request.path} (allowed: {allowed})"
            return error_response(405, message, {"Allow": allowed})
        if e.status == 404:
            return error_response(404, f"no such endpoint: {request.method} {request.path}")
        return error_response(e.status, e.reason)
    except Exception:
        # A bug or an estimator failing in an unexpected way: answer 500 and keep serving.
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal error while handling the request; see the server log")


def state_of(request: web.Request) -> ServerState:
    return request.app[STATE]


def check_model(state: ServerState, name: str, version: str | None = None) -> None:
    model = state.model
    if name != model.name:
        raise ApiError(404, f"model '{name}' not found; this server serves '{model.name}'")
    if version is not None and version != model.version:
        raise ApiError(404, f"model '{name}' has no version '{version}'; this server serves version '{model.version}'")


async def read_json(request: web.Request, limit: int, seconds: float = 30.0) -> dict[str, Any]:
    if "Inference-Header-Content-Length" in request.headers:
        raise ApiError(415, "the binary tensor extension is not supported: send the tensors as JSON")
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and content_type not in JSON_CONTENT_TYPES and not content_type.endswith("+json"):
        raise ApiError(415, f"unsupported content type '{content_type}': send JSON (application/json)")
    too_large = f"request body exceeds the limit of {limit} bytes (--max-body-bytes); send smaller batches"
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, too_large)
    try:
        if request.content.is_eof():  # the whole body came with the head (most requests): nothing to wait for
            body = await request.read()
        else:
            async with asyncio.timeout(seconds):
                body = await request.read()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {seconds:g}s") from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, too_large) from None
    except RequestPayloadError as e:  # e.g. a Content-Encoding the body does not match
        raise ApiError(400, f"could not read the request body: {str(e).strip()}") from None
    if not body.strip():
        raise ApiError(400, "request body is empty: send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as first:
        try:
            # Python clients send NaN and Infinity, which are not JSON; the stdlib accepts them.
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(400, f"invalid JSON: {first}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"request body must be a JSON object, got {describe(payload)}")
    return payload


async def inference(
    request: web.Request, protocol: str, work: Callable[[ServerState], Awaitable[web.Response]]
) -> web.Response:
    """Run one inference request, counting it and timing it whatever the outcome."""
    state = state_of(request)
    started = time.perf_counter()
    code = 500
    state.metrics.in_flight.inc()
    try:
        response = await work(state)
        code = response.status
        return response
    except ApiError as e:
        code = e.status
        raise
    finally:
        state.metrics.in_flight.dec()
        state.metrics.observe_request(protocol, code, time.perf_counter() - started)


REQUEST_ID = "X-Request-Id"


def request_id(request: web.Request) -> str:
    """The client's request id (its X-Request-Id header), or a new one: the id its labels are sent with."""
    return request.headers.get(REQUEST_ID) or str(uuid.uuid4())


def record(state: ServerState, batch: Batch, predictions: NDArray[Any], rid: str) -> None:
    """Count the rows, keep them for their labels under the request's id, and hand the batch to drift after the
    response is built; never failing the request."""
    state.metrics.predictions.inc(batch.rows)
    if state.evaluation is not None:
        try:
            matrix = batch.model_input if isinstance(batch.model_input, np.ndarray) else None
            state.evaluation.keep(rid, batch.columns, predictions, time.monotonic(), matrix)
        except ValueError as e:  # a prediction outside the model's classes: the metadata misstates them
            log.warning("feedback: request %s not kept for labels: %s", rid[:80], e)
    if state.monitor is not None:
        asyncio.get_running_loop().call_soon(_observe, state.monitor, batch, predictions)


def _observe(monitor: DriftMonitor, batch: Batch, predictions: NDArray[Any]) -> None:
    try:
        matrix = batch.model_input if isinstance(batch.model_input, np.ndarray) else None
        monitor.observe(batch.columns, predictions, matrix)
    except Exception:
        log.exception("drift: could not add a batch to the window")


def labels_from_proba(model: ServedModel, proba: NDArray[Any]) -> NDArray[Any]:
    """Predicted labels from probabilities (what predict() returns for sklearn classifiers), for drift."""
    classes = np.asarray(model.classes)
    best = np.argmax(proba, axis=1)
    labels: NDArray[Any] = classes[best] if classes.size == proba.shape[1] else best
    return labels


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=state_of(request).metrics.render(), headers={"Content-Type": CONTENT_TYPE})
