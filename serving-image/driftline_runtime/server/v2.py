"""Open Inference Protocol V2 (KServe V2 / MLServer / Triton REST), following MLServer's sklearn runtime."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Any

import numpy as np
from aiohttp import web

from driftline_runtime.server.errors import ApiError
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
from driftline_runtime.server.predict import datatype_of, jsonable
from driftline_runtime.server.tensors import decode_v2, requested_outputs

PROTOCOL = "v2"
MODEL = "/v2/models/{name}"
VERSIONED = "/v2/models/{name}/versions/{version}"


def _check(request: web.Request) -> ServerState:
    state = state_of(request)
    check_model(state, request.match_info["name"], request.match_info.get("version"))
    return state


async def server_metadata(request: web.Request) -> web.Response:
    return json_response(
        {"name": "driftline-runtime", "version": package_version("driftline-runtime"), "extensions": []}
    )


async def live(request: web.Request) -> web.Response:
    return json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    is_ready = state_of(request).ready
    return json_response({"ready": is_ready}, 200 if is_ready else 503)


async def model_ready(request: web.Request) -> web.Response:
    state = _check(request)
    return json_response({"name": state.model.name, "ready": state.ready}, 200 if state.ready else 503)


def metadata(state: ServerState) -> dict[str, Any]:
    model = state.model
    width = len(model.features)
    labels = np.asarray(model.classes) if model.task == "classification" and model.classes else np.zeros(0)
    outputs = [{"name": "predict", "datatype": datatype_of(labels), "shape": [-1, 1]}]
    if model.has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]})
    parameters: dict[str, Any] = {
        "task": model.task,
        "target": model.target,
        "features": [{"name": f.name, "dtype": f.dtype} for f in model.features],
        "sha256": model.sha256,
        "framework_version": model.framework_version,
    }
    if model.task == "classification":
        parameters["classes"] = list(model.classes)
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64" if model.all_numeric else "BYTES", "shape": [-1, width]}],
        "outputs": outputs,
        "parameters": parameters,
    }


async def model_metadata(request: web.Request) -> web.Response:
    return json_response(metadata(_check(request)))


async def _infer(request: web.Request, state: ServerState) -> web.Response:
    check_model(state, request.match_info["name"], request.match_info.get("version"))
    body = await read_json(request, state.max_body_bytes, state.body_seconds)
    given = body.get("id")
    if given is not None and not isinstance(given, str):
        raise ApiError(400, '"id" must be a string')
    rid = given or request_id(request)
    outputs = requested_outputs(body, state.model)
    batch = decode_v2(body, state.model)
    results = {name: await state.predict(batch, name) for name in outputs}
    predicted = results.get("predict")
    labels = predicted if predicted is not None else labels_from_proba(state.model, results["predict_proba"])
    record(state, batch, labels, rid)
    if state.mirror is not None:
        state.mirror.offer_v2(body, rid, labels)
    response = json_response(
        {
            "model_name": state.model.name,
            "model_version": state.model.version,
            "id": rid,
            "parameters": {},
            "outputs": [
                {
                    "name": name,
                    # MLServer's NumpyCodec reports a 1-D result as [N, 1].
                    "shape": list(values.shape) if values.ndim > 1 else [values.shape[0], 1],
                    "datatype": datatype_of(values),
                    "parameters": {"content_type": "np"},
                    "data": jsonable(values.reshape(-1)),
                }
                for name, values in results.items()
            ],
        }
    )
    response.headers[REQUEST_ID] = rid
    return response


async def infer(request: web.Request) -> web.Response:
    return await inference(request, PROTOCOL, lambda state: _infer(request, state))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v2", server_metadata)
    router.add_get("/v2/health/live", live)
    router.add_get("/v2/health/ready", ready)
    for base in (MODEL, VERSIONED):
        router.add_get(base, model_metadata)
        router.add_get(f"{base}/ready", model_ready)
        router.add_post(f"{base}/infer", infer)
