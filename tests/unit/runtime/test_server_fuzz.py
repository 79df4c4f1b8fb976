"""The model server fuzzed (hypothesis): arbitrary JSON documents, shapes, datatypes, labels, headers and bytes against
the V1 and V2 inference and feedback endpoints. Only 2xx or 4xx ever comes back, the server stays alive, and its
memory stays bounded."""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.runtime.server_kit import running, server_state, write_model_dir

pytestmark = pytest.mark.unit

MAX_BODY = 64 * 1024
PATHS = [
    "/v1/models/iris:predict",
    "/v2/models/iris/infer",
    "/v1/models/other:predict",
    "/v2/models/iris/ready",
    "/v2/models/iris/feedback",
    "/v1/models/iris:feedback",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=40,
)
numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-(10**6), 10**6))
tensor = st.fixed_dictionaries(
    {
        "name": st.text(max_size=6),
        "shape": st.lists(st.integers(-2, 6), max_size=3),
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "INT8", "BOOL", "BYTES", "FP16", "UINT64", "nope"]),
        "data": st.one_of(
            st.lists(numbers, max_size=30), st.lists(st.lists(numbers, max_size=5), max_size=6), json_values
        ),
    },
    optional={"parameters": json_values},
)
label = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["known-1", "known-3", "nobody"]), json_values), "truth": json_values},
    optional={"row": st.one_of(st.integers(-2, 4), json_values)},
)
bodies = st.one_of(
    st.builds(lambda v: json.dumps(v).encode(), label),
    st.builds(lambda v: json.dumps({"feedback": v}).encode(), st.lists(label, max_size=5)),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda v: json.dumps({"instances": v}).encode(), json_values),
    st.builds(lambda v: json.dumps({"instances": v}).encode(), st.lists(st.lists(numbers, max_size=6), max_size=8)),
    st.builds(lambda t: json.dumps({"inputs": t}).encode(), st.lists(tensor, max_size=3)),
    st.binary(max_size=512),
)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Inference-Header-Content-Length", "Content-Encoding", "Accept"]),
    st.sampled_from(["application/json", "text/plain", "application/octet-stream", "gzip", "12", "-1", "x" * 300]),
    max_size=3,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("model")
    sha = write_model_dir(directory)
    with running(server_state(directory, sha, "iris", "3", "--max-body-bytes", str(MAX_BODY))) as url:
        for rid, rows in (("known-1", 1), ("known-3", 3)):  # predictions the fuzzed labels may name
            body = {
                "id": rid,
                "inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP64", "data": [1.0] * 4 * rows}],
            }
            assert requests.post(f"{url}/v2/models/iris/infer", json=body, timeout=30).ok
        yield url


@given(st.sampled_from(PATHS), bodies, headers)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_requests_get_only_2xx_or_4xx(base: str, path: str, body: bytes, extra: dict[str, str]) -> None:
    http = requests.Session()
    http.trust_env = False
    r = http.post(f"{base}{path}", data=body, headers={"Content-Type": "application/json", **extra}, timeout=30)
    assert r.status_code < 500, (r.status_code, r.text[:300], body[:300], extra)
    if r.status_code >= 400:
        assert r.json()["error"], r.text  # a message, never an empty answer


def test_huge_payloads_are_refused_and_memory_stays_bounded(base: str) -> None:
    http = requests.Session()
    http.trust_env = False
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    huge = b'{"instances": [' + b"[1.0, 2.0, 3.0, 4.0]," * 2_000_000 + b"[1.0, 2.0, 3.0, 4.0]]}"  # ~40 MB
    for _ in range(5):
        r = http.post(f"{base}/v1/models/iris:predict", data=huge, timeout=60)
        assert r.status_code == 413, r.text[:200]
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # The client itself holds the 40 MB body; the server must not hold five more copies of it.
    assert grown_kib < 100 * 1024, f"peak RSS grew by {grown_kib} KiB"
    ok = http.post(f"{base}/v1/models/iris:predict", json={"instances": [[1.0, 5.0, 3.0, 1.0]]}, timeout=10)
    assert ok.status_code == 200, ok.text
