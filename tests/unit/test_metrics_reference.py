"""The README's metrics reference is what the code exposes: every metric of the model server (scraped from a real
server's /metrics) and of the operator (its registry), with the same type and labels; nothing missing, nothing
stale."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from driftline import telemetry
from tests.unit.runtime.server_kit import reference_data, running, server_state, write_model_dir

pytestmark = pytest.mark.unit
README = Path(__file__).resolve().parents[2] / "README.md"
Exposed = dict[str, tuple[str, frozenset[str], str]]


def documented() -> Exposed:
    section = README.read_text().split("## Metrics reference", 1)[1].split("\n## ", 1)[0]
    out: Exposed = {}
    for name, kind, labels, origin in re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]*) \| ([^|]+) \|", section, re.M):
        out[name] = (kind, frozenset(x.strip() for x in labels.split(",") if x.strip()), origin.strip())
    return out


def _exposed_name(name: str, kind: str) -> str:
    return f"{name}_total" if kind == "counter" else name


def model_server(tmp_path: Path) -> Exposed:
    sha = write_model_dir(tmp_path)
    mirror = ("--mirror-url", "http://127.0.0.1:9", "--mirror-share", "1")  # a dead shadow: its counters still show
    with running(server_state(tmp_path, sha, "iris", "3", "--drift-min-samples", "5", *mirror)) as base:
        requests.post(f"{base}/v1/models/iris:predict", json={"instances": reference_data(20).tolist()}, timeout=30)
        for _ in range(100):  # the mirrored request fails on the server's loop, a moment after the answer
            text = requests.get(f"{base}/metrics", timeout=30).text
            if "driftline_shadow_requests_total{" in text:
                break
            time.sleep(0.05)
    out: Exposed = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):  # the client's creation timestamps of counters and histograms
            continue
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        out[_exposed_name(family.name, family.type)] = (family.type, labels, "model server")
    return out


def operator() -> Exposed:
    out: Exposed = {}
    for metric in vars(telemetry).values():
        if isinstance(metric, MetricWrapperBase):
            kind = metric._type
            out[_exposed_name(metric._name, kind)] = (kind, frozenset(metric._labelnames), "operator")
    return out


def test_readme_lists_every_metric_with_its_type_and_labels(tmp_path: Path) -> None:
    exposed = {**model_server(tmp_path), **operator()}
    assert len(exposed) >= 20
    assert documented() == exposed
