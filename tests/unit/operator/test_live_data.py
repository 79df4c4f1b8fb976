"""A retrain on live labels: the pods' labelled windows made into one dataset that fits a ConfigMap, and the
TrainingJob that reads it."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.decide.live_data import merge
from driftline.render.retrain import live_data, trainingjob

pytestmark = pytest.mark.unit


def test_pages_are_joined_under_one_header() -> None:
    got = merge(["a,b,y\n1,2,0\n3,4,1\n", "a,b,y\n5,6,1\n"])
    assert got is not None
    assert got.csv == "a,b,y\n1,2,0\n3,4,1\n5,6,1\n" and got.rows == 3
    assert got.note == "3 labelled live rows from 2 pods"


def test_only_the_newest_rows_that_fit_are_kept() -> None:
    pages = ["x,y\n" + "".join(f"{i:04d},1\n" for i in range(100))]
    got = merge(pages, max_bytes=4 + 7 * 10)
    assert got is not None and got.rows == 10
    assert got.csv.splitlines()[1] == "0090,1" and got.csv.splitlines()[-1] == "0099,1"
    assert "the newest 10 of 100" in got.note
    assert len(got.csv.encode()) <= 4 + 7 * 10


def test_no_rows_is_no_dataset_and_other_columns_are_left_out() -> None:
    assert merge([]) is None and merge(["a,b,y\n", ""]) is None
    got = merge(["a,b,y\n1,2,0\n", "c,y\n9,9\n"])
    assert got is not None and got.rows == 1 and "1 pod(s) with other columns left out" in got.note


ISVC: dict[str, Any] = {
    "apiVersion": "driftline.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "bc", "namespace": "ns", "uid": "u-1"},
    "spec": {
        "model": "m",
        "retrain": {
            "data": "LiveLabels",
            "template": {
                "model": "m",
                "dataset": {"uri": "s3://b/k.csv", "target": "label", "validationSplit": 0.3,
                            "authorization": {"secretKeyRef": {"name": "s", "key": "k"}}},
                "estimator": "sklearn.linear_model.LogisticRegression",
                "output": {"storageUri": "pvc://models/m"},
            },
        },
    },
}  # fmt: skip


def test_the_retrain_reads_the_live_rows_with_the_templates_target_and_split() -> None:
    cm = live_data(ISVC, 3, "a,label\n1,0\n")
    tj = trainingjob(ISVC, 3, 2, "live accuracy dropped", "Performance", live=True)
    name = cm["metadata"]["name"]
    assert tj["spec"]["dataset"] == {
        "uri": f"configmap://{name}/data.csv", "format": "csv", "target": "label", "validationSplit": 0.3
    }  # fmt: skip
    assert cm["data"] == {"data.csv": "a,label\n1,0\n"}
    assert (
        cm["metadata"]["ownerReferences"][0]["name"] == "bc"
        and cm["metadata"]["labels"]["driftline.dev/retrain"] == "3"
    )
    assert trainingjob(ISVC, 3)["spec"]["dataset"]["uri"] == "s3://b/k.csv"  # Template: as written
