"""A corpus of malformed requests: each gets the exact 4xx and a message naming the problem; none hurts the server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.unit.runtime.server_kit import metric_lines, running, server_state, write_model_dir

pytestmark = pytest.mark.unit

MAX_BODY = 4096
V1 = "/v1/models/iris:predict"
V2 = "/v2/models/iris/infer"


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    says: str  # a piece of the error message that names the problem
    path: str = V1
    body: bytes | str | None = None
    json: object = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)


def tensor(shape: list[int], data: object, datatype: str = "FP64", name: str = "x") -> dict[str, object]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


ROW = [1.0, 5.0, 3.0, 1.0]
CASES = [
    # Body and transport
    Case("invalid-json", 400, "invalid JSON", body='{"instances": [[1, 2'),
    Case("not-an-object", 400, "must be a JSON object, got a list", body="[[1, 2, 3, 4]]"),
    Case("empty-body", 400, "request body is empty", body=""),
    Case(
        "content-encoding-mismatch",
        400,
        "could not read the request body",
        body='{"instances": [[1, 5, 3, 1]]}',
        headers={"Content-Encoding": "gzip"},
    ),
    Case("deep-nesting", 400, "invalid JSON", body="[" * 2000 + "]" * 2000),
    Case("oversized", 413, f"exceeds the limit of {MAX_BODY} bytes", json={"instances": [ROW] * 400}),
    Case("oversized-chunked", 413, "exceeds the limit", body=None, json="chunked"),
    Case(
        "wrong-content-type",
        415,
        "unsupported content type 'application/xml'",
        body="<x/>",
        headers={"Content-Type": "application/xml"},
    ),
    Case(
        "binary-extension",
        415,
        "binary tensor extension",
        path=V2,
        json={"inputs": []},
        headers={"Inference-Header-Content-Length": "10"},
    ),
    # V1 structure
    Case("v1-missing-instances", 400, 'missing "instances"', json={"rows": [ROW]}),
    Case("v1-instances-not-list", 400, '"instances" must be a list of rows, got 5', json={"instances": 5}),
    Case("v1-empty-batch", 400, "empty batch", json={"instances": []}),
    Case(
        "v1-too-few-features",
        400,
        "instances[0] has 3 values but the model expects 4 features (f0, f1, f2, f3)",
        json={"instances": [[1, 2, 3]]},
    ),
    Case(
        "v1-too-many-features",
        400,
        "instances[1] has 5 values but the model expects 4",
        json={"instances": [ROW, [*ROW, 9]]},
    ),
    Case("v1-ragged", 400, "instances[1] has 2 values", json={"instances": [ROW, [1, 2]]}),
    Case(
        "v1-scalar-rows",
        400,
        "instances[0] must be a list of 4 feature values or an object keyed by feature name",
        json={"instances": [1, 2, 3, 4]},
    ),
    Case(
        "v1-mixed-row-kinds",
        400,
        "instances[1] must be a list of feature values like instances[0]",
        json={"instances": [ROW, {"f0": 1}]},
    ),
    Case(
        "v1-string-value",
        400,
        "instances[0] feature 'f3': expected a number, got the string 'abc'",
        json={"instances": [[1, 2, 3, "abc"]]},
    ),
    Case(
        "v1-nested-value",
        400,
        "instances[1] feature 'f1': expected a number, got a list",
        json={"instances": [ROW, [1, [2], 3, 4]]},
    ),
    Case(
        "v1-object-value",
        400,
        "instances[0] feature 'f0': expected a number, got an object",
        json={"instances": [[{}, 2, 3, 4]]},
    ),
    Case(
        "v1-missing-named-feature",
        400,
        "instances[0] is missing feature(s) 'f3'",
        json={"instances": [{"f0": 1, "f1": 2, "f2": 3}]},
    ),
    Case(
        "v1-unknown-named-feature",
        400,
        "instances[0] has unknown feature(s) 'zz'",
        json={"instances": [{"f0": 1, "f1": 2, "f2": 3, "f3": 4, "zz": 5}]},
    ),
    Case(
        "v1-nan-literal",
        400,
        "feature 'f1' row 0: missing value (null/NaN), which this model does not accept",
        body='{"instances": [[1, NaN, 3, 4]]}',
    ),
    Case("v1-null", 400, "feature 'f2' row 1: missing value", json={"instances": [ROW, [1, 2, None, 4]]}),
    Case("v1-infinity", 400, "instances[0] feature 'f0' is infinite", body='{"instances": [[Infinity, 2, 3, 4]]}'),
    Case("v1-overflow", 400, "instances[0] feature 'f3' is infinite", body='{"instances": [[1, 2, 3, 1e400]]}'),
    Case(
        "v1-huge-integer",
        400,
        "instances[0] feature 'f3': the number is too large for a 64-bit float",
        body='{"instances": [[1, 2, 3, 1' + "0" * 400 + "]]}",
    ),
    Case("v1-bool-row", 400, "instances[0] must be a list", json={"instances": [True]}),
    # V2 structure
    Case("v2-missing-inputs", 400, 'missing "inputs"', path=V2, json={"instances": [ROW]}),
    Case("v2-inputs-not-list", 400, '"inputs" must be a non-empty list', path=V2, json={"inputs": {"x": 1}}),
    Case("v2-input-not-object", 400, "inputs[0] must be an object", path=V2, json={"inputs": [[1, 2]]}),
    Case(
        "v2-no-name",
        400,
        "inputs[0].name must be a string",
        path=V2,
        json={"inputs": [{"shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    ),
    Case(
        "v2-bad-shape",
        400,
        "input 'x': shape must be a non-empty list of non-negative integers",
        path=V2,
        json={"inputs": [tensor([-1, 4], ROW)]},
    ),
    Case(
        "v2-unsupported-datatype",
        400,
        "input 'x': unsupported datatype 'COMPLEX64'",
        path=V2,
        json={"inputs": [tensor([1, 4], ROW, "COMPLEX64")]},
    ),
    Case(
        "v2-no-data",
        400,
        "input 'x' has no data",
        path=V2,
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]},
    ),
    Case(
        "v2-shape-vs-data",
        400,
        "input 'x': shape [2, 4] holds 8 values but data has 7",
        path=V2,
        json={"inputs": [tensor([2, 4], [*ROW, 1, 2, 3])]},
    ),
    Case(
        "v2-wrong-feature-count",
        400,
        "input 'x' has shape [2, 3]: 3 features per row, but the model expects 4",
        path=V2,
        json={"inputs": [tensor([2, 3], [1, 2, 3, 4, 5, 6])]},
    ),
    Case("v2-1d-matrix", 400, "send one [N, 4] tensor", path=V2, json={"inputs": [tensor([4], ROW)]}),
    Case("v2-ragged", 400, "input 'x': data is ragged", path=V2, json={"inputs": [tensor([2, 4], [ROW, [1, 2]])]}),
    Case(
        "v2-string-in-fp64",
        400,
        "input 'x': data[2] is the string 'oops', not a number (FP64)",
        path=V2,
        json={"inputs": [tensor([1, 4], [1, 2, "oops", 4])]},
    ),
    Case(
        "v2-fraction-in-int64",
        400,
        "input 'x': data[1] = 2.5 is not a valid INT64",
        path=V2,
        json={"inputs": [tensor([1, 4], [1, 2.5, 3, 4], "INT64")]},
    ),
    Case(
        "v2-null-in-int32",
        400,
        "input 'x': data[0] is null, not a number (INT32)",
        path=V2,
        json={"inputs": [tensor([1, 4], [None, 2, 3, 4], "INT32")]},
    ),
    Case(
        "v2-bytes-for-numeric",
        400,
        "input 'x' row 0 feature 'f1': expected a number, got the string 'b'",
        path=V2,
        json={"inputs": [tensor([1, 4], [1, "b", "3", 4], "BYTES")]},
    ),
    Case(
        "v2-bytes-ragged",
        400,
        "input 'x': data[0] is a list (ragged data or not a string)",
        path=V2,
        json={"inputs": [tensor([2, 2], [["a", "b"], ["c"]], "BYTES")]},
    ),
    Case("v2-empty-batch", 400, "empty batch", path=V2, json={"inputs": [tensor([0, 4], [])]}),
    Case(
        "v2-wrong-tensor-names",
        400,
        "one tensor per feature named f0, f1, f2, f3",
        path=V2,
        json={"inputs": [tensor([1], [1.0], name=n) for n in ("f0", "f1", "f2", "nope")]},
    ),
    Case(
        "v2-per-feature-n-mismatch",
        400,
        "input 'f2' has shape [2]",
        path=V2,
        json={
            "inputs": [
                tensor([1], [1.0], name="f0"),
                tensor([1], [1.0], name="f1"),
                tensor([2], [1.0, 2.0], name="f2"),
                tensor([1], [1.0], name="f3"),
            ]
        },
    ),
    Case(
        "v2-unknown-output",
        400,
        "unknown output 'transform'",
        path=V2,
        json={"inputs": [tensor([1, 4], ROW)], "outputs": [{"name": "transform"}]},
    ),
    Case(
        "v2-outputs-not-objects",
        400,
        '"outputs" must be a list of objects',
        path=V2,
        json={"inputs": [tensor([1, 4], ROW)], "outputs": ["predict"]},
    ),
    Case("v2-id-not-string", 400, '"id" must be a string', path=V2, json={"id": 7, "inputs": [tensor([1, 4], ROW)]}),
    Case(
        "v2-nan-in-fp32",
        400,
        "feature 'f0' row 0: missing value",
        path=V2,
        json={"inputs": [tensor([1, 4], [None, 2, 3, 4], "FP32")]},
    ),
    # Routing
    Case(
        "unknown-model-v1",
        404,
        "model 'nope' not found; this server serves 'iris'",
        path="/v1/models/nope:predict",
        json={"instances": [ROW]},
    ),
    Case(
        "unknown-model-v2",
        404,
        "model 'nope' not found",
        path="/v2/models/nope/infer",
        json={"inputs": [tensor([1, 4], ROW)]},
    ),
    Case(
        "unknown-version",
        404,
        "has no version '9'; this server serves version '3'",
        path="/v2/models/iris/versions/9/infer",
        json={"inputs": [tensor([1, 4], ROW)]},
    ),
    Case("unknown-model-metadata", 404, "model 'nope' not found", path="/v2/models/nope", method="GET"),
    Case("get-on-predict", 405, "method GET is not allowed on /v1/models/iris:predict (allowed: POST)", method="GET"),
    Case("delete-health", 405, "method DELETE is not allowed", path="/v2/health/live", method="DELETE"),
    Case("root", 404, "no such endpoint: GET /", path="/", method="GET"),
    Case(
        "unknown-path",
        404,
        "no such endpoint: POST /v3/models/iris/infer",
        path="/v3/models/iris/infer",
        json={"inputs": []},
    ),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("model")
    sha = write_model_dir(directory)
    with running(server_state(directory, sha, "iris", "3", "--max-body-bytes", str(MAX_BODY))) as base:
        yield base


def send(url: str, case: Case) -> requests.Response:
    headers = dict(case.headers)
    if case.json == "chunked":
        chunks = (b'{"instances": [' + b"[1.0, 2.0, 3.0, 4.0], " * 50 for _ in range(4))
        return requests.post(url + case.path, data=chunks, timeout=30)
    if case.body is not None:
        headers.setdefault("Content-Type", "application/json")
        return requests.request(case.method, url + case.path, data=case.body, headers=headers, timeout=30)
    return requests.request(case.method, url + case.path, json=case.json, headers=headers, timeout=30)


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_request_gets_the_right_status_and_a_message_naming_the_problem(url: str, case: Case) -> None:
    r = send(url, case)
    assert r.status_code == case.status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert case.says in r.json()["error"]


def test_the_server_keeps_serving_after_the_whole_corpus(url: str) -> None:
    for case in CASES:
        send(url, case)
    r = requests.post(url + V1, json={"instances": [ROW]}, timeout=30)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    text = requests.get(url + "/metrics", timeout=30).text
    codes = metric_lines(text, "driftline_inference_requests_total")
    assert all('model="iris"' in labels for labels in codes)  # never the name a client made up
    assert not any('code="5' in labels for labels in codes)


def test_curl_style_form_content_type_with_a_json_body_is_accepted(url: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = requests.post(url + V1, data='{"instances": [[1, 5, 3, 1]]}', headers=headers, timeout=30)
    assert r.status_code == 200
