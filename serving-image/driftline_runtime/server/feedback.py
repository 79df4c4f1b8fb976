"""Ground truth for served predictions: POST /v2/models/{name}/feedback and its V1 twin /v1/models/{name}:feedback.

A label names its prediction by the request's id (the V2 response's "id", or the X-Request-Id header both protocols
answer with):

    {"id": "req-1", "truth": 1}                  a one-row request's label
    {"id": "req-1", "truth": [1, 0, 2]}          one label per row of the request, in order
    {"id": "req-1", "row": 2, "truth": 0}        one row's label
    {"feedback": [{"id": ...}, ...]}             many of the above at once

GET .../feedback/rows answers the labelled window as CSV (the model's features, then its target column, oldest row
first): the live data a retrain learns from (InferenceService spec.retrain.data LiveLabels).

One label answers 200, or its own 4xx: 404 unknown id, 410 expired, 409 already labelled, 400/422 not a label for this
model. A batch answers 200 with a count per outcome and the first errors; only a malformed body fails it whole. Every
row's outcome is counted in driftline_feedback_rows_total.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from driftline_runtime.feedback import LiveEvaluation, Outcome
from driftline_runtime.server.errors import ApiError, describe
from driftline_runtime.server.handling import ServerState, check_model, json_response, read_json, state_of

SHOWN_ERRORS = 10
STATUS = {
    Outcome.ACCEPTED: 200,
    Outcome.UNKNOWN: 404,
    Outcome.EXPIRED: 410,
    Outcome.DUPLICATE: 409,
    Outcome.INVALID: 422,
}
FIELDS = frozenset({"id", "truth", "row"})


def _evaluation(state: ServerState) -> LiveEvaluation:
    if state.evaluation is None:
        msg = "this server keeps no predictions for labels (started with --feedback-max-rows 0, or the model's "
        msg += "classes are unknown)"
        raise ApiError(404, msg)
    return state.evaluation


def _check_item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ApiError(400, f"{where} must be a JSON object with id and truth, got {describe(item)}")
    missing = [k for k in ("id", "truth") if k not in item]
    if missing:
        raise ApiError(400, f"{where} has no {' or '.join(repr(m) for m in missing)}")
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise ApiError(400, f"{where} has unknown field(s) {', '.join(unknown)}: expected id, truth and row")
    return item


async def feedback(request: web.Request) -> web.Response:
    state = state_of(request)
    check_model(state, request.match_info["name"], request.match_info.get("version"))
    evaluation = _evaluation(state)
    body = await read_json(request, state.max_body_bytes, state.body_seconds)
    now = time.monotonic()
    if "feedback" not in body:
        item = _check_item(body, "the body")
        result = evaluation.label(item["id"], item["truth"], item.get("row"), now)
        if result.outcome is not Outcome.ACCEPTED:
            raise ApiError(STATUS[result.outcome], result.message)
        if state.mirror is not None:
            state.mirror.offer_label(item)
        return json_response({"accepted": len(result.joined.truth) if result.joined else 0})
    items = body["feedback"]
    if not isinstance(items, list):
        raise ApiError(400, f'"feedback" must be a list of labels, got {describe(items)}')
    checked = [_check_item(item, f"feedback[{i}]") for i, item in enumerate(items)]
    counts = dict.fromkeys((o.value for o in Outcome), 0)
    errors: list[str] = []
    for i, item in enumerate(checked):
        result = evaluation.label(item["id"], item["truth"], item.get("row"), now)
        counts[result.outcome.value] += 1
        if result.outcome is Outcome.ACCEPTED and state.mirror is not None:
            state.mirror.offer_label(item)
        if result.message and len(errors) < SHOWN_ERRORS:
            errors.append(f"feedback[{i}]: {result.message}")
    return json_response({**counts, "errors": errors})


async def labelled_rows(request: web.Request) -> web.Response:
    import pandas as pd  # the request path never pays for pandas; this is called once per retrain

    state = state_of(request)
    check_model(state, request.match_info["name"], request.match_info.get("version"))
    columns, truth = _evaluation(state).labelled()
    model = state.model
    target = model.target or "target"
    frame = pd.DataFrame(dict(zip(model.feature_names, columns, strict=True)))
    frame[target if target not in frame.columns else f"{target}_truth"] = truth
    return web.Response(body=frame.to_csv(index=False).encode(), content_type="text/csv")


def add_routes(router: web.UrlDispatcher) -> None:
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        router.add_post(f"{base}/feedback", feedback)
        router.add_get(f"{base}/feedback/rows", labelled_rows)
    router.add_post("/v1/models/{name:[^/:]+}:feedback", feedback)
