"""The demo's report is a page a browser opens as is: well-formed SVG, one band per version served, the score drawn
only where there was one, the decisions on the timeline, the manifests valid against the CRDs' own models."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.api.trainingjob import TrainingJobSpec
from driftline.demo import manifests as m
from driftline.demo.report import Mark, Sample, chart, page

pytestmark = pytest.mark.unit
SVG = "{http://www.w3.org/2000/svg}"


def samples() -> list[Sample]:
    out = [Sample(t, 0.05, 0.25, 1, "Ok") for t in range(0, 10)]
    out += [Sample(t, 0.6, 0.25, 1, "Breach") for t in range(10, 15)]
    out += [Sample(t, None, 0.25, 2, "InsufficientSamples") for t in range(15, 18)]
    out += [Sample(t, 0.04, 0.25, 2, "Ok") for t in range(18, 25)]
    return out


def test_chart_is_svg_with_a_band_per_version_and_a_gap_where_no_score() -> None:
    svg = ET.fromstring(chart(samples(), [Mark(14, "Retrain v1"), Mark(16, "RollForward v2")]))
    bands = [t.text for t in svg.iter(f"{SVG}text") if t.text in ("v1", "v2")]
    assert bands == ["v1", "v2"]
    lines = svg.findall(f"{SVG}polyline")
    assert [len(p.attrib["points"].split()) for p in lines] == [15, 7]  # broken over the 3 samples with no score
    labels = {t.text for t in svg.iter(f"{SVG}text")}
    assert {"Retrain v1", "RollForward v2", "threshold"} <= labels


def test_a_score_above_the_axis_is_clipped_not_drawn_off_the_chart() -> None:
    svg = ET.fromstring(chart([Sample(0, 0.1, 0.25, 1, "Ok"), Sample(1, 50.0, 0.25, 1, "Breach")], []))
    ys = [float(pt.split(",")[1]) for pt in svg.find(f"{SVG}polyline").attrib["points"].split()]  # type: ignore[union-attr]
    assert all(0 <= y <= float(svg.attrib["height"]) for y in ys)


def test_page_escapes_what_it_shows() -> None:
    html = page(
        "Driftline demo",
        samples(),
        [Mark(3, "<b>")],
        [("VERSION", "STAGE"), ("v1", "Production")],
        [("ACTION", "MESSAGE"), ("Rollback", "a < b & c")],
    )
    assert "a &lt; b &amp; c" in html and "<b>" not in html.replace("<body>", "")
    assert html.count("<table>") == 2 and "<svg" in html


def test_an_empty_run_still_renders() -> None:
    ET.fromstring(chart([], []))


def test_the_demos_manifests_are_valid_specs() -> None:
    store = m.storage("http://127.0.0.1:8333")
    spec = InferenceServiceSpec.model_validate(m.inferenceservice(store)["spec"])
    assert spec.drift is not None and spec.drift.action.value == "Retrain"
    assert spec.retrain is not None and spec.retrain.template.dataset.uri.startswith("configmap://")
    assert spec.storage is not None and spec.retrain.template.storage == spec.storage  # a retrain writes there too
    for name, tj, _ in (m.FIRST, m.BAD_RELEASE):
        parsed = TrainingJobSpec.model_validate(m.trainingjob(name, tj, store)["spec"])
        assert parsed.output.storage_uri.startswith("s3://") and parsed.storage == spec.storage
    (ref,) = {
        r.name for r in (spec.storage.s3.credentials.access_key_id, spec.storage.s3.credentials.secret_access_key)
    }
    assert ref == m.s3_secret({})["metadata"]["name"]
