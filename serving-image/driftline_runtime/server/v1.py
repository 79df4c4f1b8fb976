"""KServe V1 protocol: /v1/models/<name>[:predict|:predict_proba]."""

from __future__ import annotations

from aiohttp import web

from driftline_runtime.server.handling import (
    REQUEST_ID,
    ServerState,
    check_model,
    inference,
    json_response,
    labels_from_proba,
    read_json,
    record,
    request_id,
    state_of,
)
from driftline_runtime.server.inputs import decode_v1, require_proba
from driftline_runtime.server.predict import jsonable

PROTOCOL = "v1"
NAME = "{name:[^/:]+}"


async def list_models(request: web.Request) -> web.Response:
    return json_response({"models": [state_of(request).model.name]})


async def model_status(request: web.Request) -> web.Response:
    state = state_of(request)
    check_model(state, request.match_info["name"])
    return json_response({"name": state.model.name, "ready": state.ready}, 200 if state.ready else 503)


async def _predict(request: web.Request, state: ServerState, method: str) -> web.Response:
    check_model(state, request.match_info["name"])
    if method == "predict_proba":
        require_proba(state.model)
    body = await read_json(request, state.max_body_bytes, state.body_seconds)
    batch = decode_v1(body, state.model)
    output = await state.predict(batch, method)
    rid = request_id(request)
    labels = output if method == "predict" else labels_from_proba(state.model, output)
    record(state, batch, labels, rid)
    if state.mirror is not None:
        state.mirror.offer_v1(body, rid, labels)
    response = json_response({"predictions": jsonable(output)})
    response.headers[REQUEST_ID] = rid  # V1 bodies have no id: labels name the request by this header
    return response


async def predict_handler(request: web.Request) -> web.Response:
    return await inference(request, PROTOCOL, lambda state: _predict(request, state, "predict"))


async def predict_proba_handler(request: web.Request) -> web.Response:
    return await inference(request, PROTOCOL, lambda state: _predict(request, state, "predict_proba"))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/models", list_models)
    router.add_get(f"/v1/models/{NAME}", model_status)
    router.add_post(f"/v1/models/{NAME}:predict", predict_handler)
    router.add_post(f"/v1/models/{NAME}:predict_proba", predict_proba_handler)
