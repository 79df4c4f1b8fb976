"""The demo's report is a page a browser opens as is: well-formed SVG, one band per version served, the score drawn
only where there was one, the decisions on the timeline, the manifests valid against the CRDs' own models."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.api.trainingjob import TrainingJobSpec
from driftline.demo import manifests as m
from driftline.demo.report import CHAR_WIDTH, LABEL_ROW, PLOT_HEIGHT, Mark, Sample, chart, page

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
    assert {"Retrain v1", "RollForward v2", "threshold 0.25"} <= labels


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


def _numbers(svg: ET.Element, tag: str, attr: str) -> list[float]:
    return [float(e.attrib[attr]) for e in svg.iter(f"{SVG}{tag}") if attr in e.attrib]


def test_a_breach_of_8_leaves_the_threshold_and_the_healthy_readings_readable() -> None:
    """On a linear axis a score of 8 pressed the 0.25 threshold and every healthy reading into the floor."""
    run = [Sample(t, 0.05, 0.25, 1, "Ok") for t in range(10)] + [Sample(10, 8.0, 0.25, 1, "Breach")]
    svg = ET.fromstring(chart(run, []))
    (line,) = svg.findall(f"{SVG}polyline")
    ys = [float(p.split(",")[1]) for p in line.attrib["points"].split()]
    threshold_y = next(float(e.attrib["y1"]) for e in svg.iter(f"{SVG}line") if "stroke-dasharray" in e.attrib)
    healthy, breach = ys[0], ys[-1]
    assert breach < threshold_y < healthy  # in that order, top to bottom
    assert threshold_y - breach > PLOT_HEIGHT / 4 and healthy - threshold_y > PLOT_HEIGHT / 8


def test_decision_labels_never_overlap_however_close_the_decisions() -> None:
    marks = [Mark(10 + 0.2 * i, f"CanaryStep v{i}") for i in range(8)] + [Mark(60, "RollForward v9")]  # at the end
    svg = ET.fromstring(chart([Sample(0, 0.1, 0.25, 1, "Ok"), Sample(60, 0.1, 0.25, 1, "Ok")], marks))
    boxes = [
        (float(t.attrib["x"]), float(t.attrib["y"]), float(t.attrib["x"]) + CHAR_WIDTH * len(t.text or ""))
        for t in svg.iter(f"{SVG}text")
        if (t.text or "").startswith(("CanaryStep", "RollForward"))
    ]
    assert len(boxes) == 9
    assert all(x0 >= 0 and x1 <= float(svg.attrib["width"]) for x0, _, x1 in boxes), "a label runs off the chart"
    for i, (x0, y0, x1) in enumerate(boxes):
        for u0, v0, u1 in boxes[i + 1 :]:
            assert abs(y0 - v0) >= LABEL_ROW or x1 < u0 or u1 < x0, "two labels overlap"
    # The plot starts below the label rows, so no label sits over the lines either.
    assert min(float(r.attrib["y"]) for r in svg.iter(f"{SVG}rect")) > max(y for _, y, _ in boxes)


def test_time_reads_in_seconds_and_on_the_wall_clock_and_the_top_features_are_drawn() -> None:
    started = dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)
    run = [Sample(t, 0.3, 0.25, 1, "Breach", (("radius", 0.3), ("area", 0.2), ("x", 0.01), ("y", 0.02)))
           for t in range(0, 41, 10)]  # fmt: skip
    svg = ET.fromstring(chart(run, [], started))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"0s", "40s", "12:00:00", "12:00:40"} <= set(texts)
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert titles == ["feature radius", "feature area", "feature y", "drift score"]  # the top 3 by their peak
