"""The training Job's manifest: deterministic, owned, restricted, with the run policy and the right arguments."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api.constants import SIGNING_KEY_ENV, TRUSTED_KEYS_ENV
from driftline.api.modelversion import ModelVersionSpec
from driftline.api.trainingjob import TrainingJobSpec
from driftline.render.training import AUTHORIZATION_ENV, job_name, model_version, training_job
from driftline_runtime import datasets, signing

pytestmark = pytest.mark.unit


def tj(name: str = "lr", **spec: Any) -> dict[str, Any]:
    base = {
        "model": "breast-cancer",
        "dataset": {"uri": "sklearn://breast_cancer"},
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 100},
        "output": {"storageUri": "pvc://models/registry"},
    }
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ns", "uid": "0123456789abcdef"},
        "spec": {**base, **spec},
    }


def render(obj: dict[str, Any]) -> dict[str, Any]:
    return training_job(
        obj,
        TrainingJobSpec.model_validate(obj["spec"]),
        runtime_image="driftline/runtime:9",
        allowed_prefixes=("sklearn.",),
    )


def test_job_is_deterministic_owned_and_restricted() -> None:
    job = render(tj(backoffLimit=2, activeDeadlineSeconds=600, ttlSecondsAfterFinished=3600, suspend=True))
    assert job == render(tj(backoffLimit=2, activeDeadlineSeconds=600, ttlSecondsAfterFinished=3600, suspend=True))
    assert job["metadata"]["name"] == "lr-train"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("TrainingJob", "0123456789abcdef", True)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["suspend"]) == (2, 600, True)
    assert "ttlSecondsAfterFinished" not in spec  # set once the outcome is recorded (decide.training.ttl_patch)
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert container["image"] == "driftline/runtime:9"
    assert container["resources"]["requests"]


def test_trainer_arguments_and_output_location() -> None:
    args = render(tj())["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "train"
    assert "--dataset=sklearn://breast_cancer" in args
    assert "--allowed-prefixes=sklearn." in args
    assert '--params={"max_iter": 100}' in args
    assert "--output-dir=/mnt/output/registry/breast-cancer/lr-01234567" in args
    assert "--artifact-uri=pvc://models/registry/breast-cancer/lr-01234567" in args


@pytest.mark.parametrize(
    ("uri", "arg", "volume_key"),
    [
        ("pvc://data/sets/train.csv", "--dataset=/mnt/dataset/sets/train.csv", "persistentVolumeClaim"),
        ("configmap://rows/train.csv", "--dataset=/mnt/dataset/train.csv", "configMap"),
    ],
)
def test_mounted_datasets(uri: str, arg: str, volume_key: str) -> None:
    pod = render(tj(dataset={"uri": uri, "target": "label"}))["spec"]["template"]["spec"]
    assert arg in pod["containers"][0]["args"]
    assert any(volume_key in v for v in pod["volumes"] if v["name"] == "dataset")


def test_long_names_are_shortened_deterministically() -> None:
    name = "x" * 80
    assert len(job_name(tj(name))) <= 63
    assert job_name(tj(name)) == job_name(tj(name))


def test_model_version_records_lineage_and_is_owned_by_nothing() -> None:
    obj = tj()
    summary = {
        "artifact": {"storageUri": "pvc://models/a", "sha256": "f" * 64, "frameworkVersion": "1.9"},
        "metrics": {"accuracy": 0.97},
        "dataset": {"sha256": "a" * 64},
        "params": {"C": 1},
    }
    mv = model_version(obj, TrainingJobSpec.model_validate(obj["spec"]), summary, 3, "driftline/runtime:9")
    assert mv["metadata"]["name"] == "breast-cancer-v3"
    assert "ownerReferences" not in mv["metadata"]
    assert mv["spec"]["trainingJobRef"]["uid"] == "0123456789abcdef"
    assert mv["spec"]["dataset"] == {"uri": "sklearn://breast_cancer", "sha256": "a" * 64}
    assert mv["spec"]["metrics"] == {"accuracy": 0.97}


@pytest.mark.parametrize(
    ("limits", "threads"), [(None, 1), ({"cpu": "500m"}, 1), ({"cpu": "1500m"}, 2), ({"cpu": 4}, 4)]
)
def test_trainer_threads_follow_the_cpu_limit(limits: dict[str, Any] | None, threads: int) -> None:
    extra = {"resources": {"limits": limits}} if limits else {}
    args = render(tj(**extra))["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--threads={threads}" in args


AUTHORIZED = {
    "uri": "https://data.example.com/churn.csv?v=3",
    "target": "churned",
    "authorization": {"secretKeyRef": {"name": "data-credentials", "key": "authorization"}},
}
SECRET_REF = {"secretKeyRef": {"name": "data-credentials", "key": "authorization"}}


def test_dataset_credentials_reach_the_trainer_only_as_a_secret_reference() -> None:
    job = render(tj(dataset=AUTHORIZED))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "DRIFTLINE_DATASET_AUTHORIZATION", "valueFrom": SECRET_REF}]
    assert "--dataset=https://data.example.com/churn.csv?v=3" in container["args"]
    # Nothing else names the Secret: no volume, no argument; and the operator renders it without reading it.
    assert "data-credentials" not in str(job["spec"]["template"]["spec"]["volumes"])
    assert not any("data-credentials" in a or "authorization" in a.lower() for a in container["args"])
    assert "env" not in render(tj())["spec"]["template"]["spec"]["containers"][0]  # unchanged without credentials


def test_a_custom_trainer_gets_the_same_secret_reference() -> None:
    template = {"spec": {"containers": [{"name": "t", "image": "me/trainer:1", "env": [{"name": "A", "value": "1"}]}]}}
    obj = tj(dataset=AUTHORIZED, template=template)
    del obj["spec"]["estimator"]
    (container,) = render(obj)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["A"] == {"name": "A", "value": "1"}
    assert env["DRIFTLINE_DATASET_URI"]["value"] == "https://data.example.com/churn.csv?v=3"
    assert env["DRIFTLINE_DATASET_AUTHORIZATION"] == {
        "name": "DRIFTLINE_DATASET_AUTHORIZATION",
        "valueFrom": SECRET_REF,
    }


def test_the_operator_and_the_trainer_agree_on_the_variable() -> None:
    assert AUTHORIZATION_ENV == datasets.AUTHORIZATION_ENV


STORAGE = {
    "s3": {
        "endpoint": "https://s3.example.com",
        "credentials": {
            "accessKeyId": {"name": "s3", "key": "id"},
            "secretAccessKey": {"name": "s3", "key": "secret"},
            "sessionToken": {"name": "s3", "key": "token"},
        },
    }
}


def test_object_storage_output_is_written_by_the_trainer_not_mounted() -> None:
    obj = tj(
        output={"storageUri": "s3://models/registry"}, dataset={"uri": "s3://data/2026/train.parquet"}, storage=STORAGE
    )
    pod = render(obj)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--output-dir=s3://models/registry/breast-cancer/lr-01234567" in container["args"]
    assert "--artifact-uri=s3://models/registry/breast-cancer/lr-01234567" in container["args"]
    assert "--dataset=s3://data/2026/train.parquet" in container["args"]  # read by the trainer, not mounted
    assert {v["name"] for v in pod["volumes"]} == {"tmp"}
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "https://s3.example.com"
    assert env["DRIFTLINE_S3_PATH_STYLE"]["value"] == "false"
    refs = {
        n: env[n]["valueFrom"]["secretKeyRef"]
        for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    assert refs == {
        "AWS_ACCESS_KEY_ID": {"name": "s3", "key": "id"},
        "AWS_SECRET_ACCESS_KEY": {"name": "s3", "key": "secret"},
        "AWS_SESSION_TOKEN": {"name": "s3", "key": "token"},
    }


def test_a_custom_trainer_with_object_storage_output_gets_its_uri_and_settings_not_a_directory() -> None:
    template = {"spec": {"containers": [{"name": "train", "image": "example/trainer:1"}]}}
    obj = tj(estimator=None, template=template, output={"storageUri": "s3://models/registry"}, storage=STORAGE)
    (container,) = render(obj)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DRIFTLINE_ARTIFACT_URI"]["value"] == "s3://models/registry/breast-cancer/lr-01234567"
    assert "DRIFTLINE_OUTPUT_DIR" not in env
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "secret"}}
    assert "volumeMounts" not in container or not any(m["name"] == "output" for m in container["volumeMounts"])


def test_the_signing_key_reaches_the_trainer_only_as_a_secret_reference_and_its_fingerprint_the_version() -> None:
    key = {"name": "model-signing", "key": "private.pem"}
    ref = {"name": "DRIFTLINE_SIGNING_KEY", "valueFrom": {"secretKeyRef": key}}
    (builtin,) = render(tj(signing={"secretKeyRef": key}))["spec"]["template"]["spec"]["containers"]
    assert builtin["env"] == [ref]
    template = {"spec": {"containers": [{"name": "t", "image": "me/trainer:1"}]}}
    obj = tj(signing={"secretKeyRef": key}, template=template)
    del obj["spec"]["estimator"]
    (custom,) = render(obj)["spec"]["template"]["spec"]["containers"]
    assert ref in custom["env"]
    assert SIGNING_KEY_ENV == signing.SIGNING_KEY_ENV and TRUSTED_KEYS_ENV == signing.TRUSTED_KEYS_ENV

    fingerprint = "sha256:" + "b" * 64
    summary = {"artifact": {"storageUri": "pvc://models/a", "sha256": "f" * 64, "signedBy": fingerprint}}
    mv = model_version(obj, TrainingJobSpec.model_validate(obj["spec"]), summary, 1, "me/trainer:1")
    assert mv["spec"]["artifact"]["signedBy"] == fingerprint
    del summary["artifact"]["signedBy"]
    assert (
        "signedBy"
        not in model_version(obj, TrainingJobSpec.model_validate(obj["spec"]), summary, 1, "i")["spec"]["artifact"]
    )


def test_the_built_in_trainers_pod_takes_its_settings_and_a_template_sets_its_own() -> None:
    from driftline.api.common import PodSettings

    defaults = PodSettings.model_validate({"imagePullSecrets": [{"name": "regcred"}], "labels": {"team": "ml"}})
    obj = tj(pod={"nodeSelector": {"pool": "cpu-spot"}, "tolerations": [{"key": "spot", "operator": "Exists"}]})
    job = training_job(
        obj, TrainingJobSpec.model_validate(obj["spec"]), runtime_image="r:9", allowed_prefixes=("sklearn.",),
        pod_defaults=defaults,
    )  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "cpu-spot"} and pod["tolerations"] == [{"key": "spot", "operator": "Exists"}]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "ml"
    assert "team" not in job["metadata"]["labels"]  # the pod's, not the Job's
    template = {"spec": {"containers": [{"name": "t", "image": "me/trainer:1"}]}}
    with pytest.raises(ValueError, match="set these in the template"):
        TrainingJobSpec.model_validate({**tj(template=template, pod={"nodeSelector": {"a": "b"}})["spec"]})


def test_the_built_in_trainers_image_serves_what_it_trained_and_a_custom_trainers_does_not() -> None:
    summary = {"artifact": {"storageUri": "pvc://models/a", "sha256": "f" * 64}}
    builtin = tj()
    mv = model_version(builtin, TrainingJobSpec.model_validate(builtin["spec"]), summary, 1, "driftline/runtime:9")
    assert mv["spec"]["servingImage"] == mv["spec"]["trainingImage"] == "driftline/runtime:9"
    assert "trainingImageID" not in mv["spec"]
    digest = "sha256:" + "ab" * 32
    mv = model_version(
        builtin,
        TrainingJobSpec.model_validate(builtin["spec"]),
        summary,
        1,
        "driftline/runtime:9",
        f"driftline/runtime@{digest}",
        f"driftline/runtime@{digest}",
    )
    assert mv["spec"]["trainingImageID"] == mv["spec"]["servingImage"] == f"driftline/runtime@{digest}"
    assert mv["spec"]["trainingImage"] == "driftline/runtime:9"
    ModelVersionSpec.model_validate(mv["spec"])
    custom = tj(template={"spec": {"containers": [{"name": "t", "image": "me/trainer:1"}]}})
    del custom["spec"]["estimator"]
    mv = model_version(custom, TrainingJobSpec.model_validate(custom["spec"]), summary, 1, "me/trainer:1")
    assert "servingImage" not in mv["spec"]  # a trainer's image is no server: the runtime image serves it


def test_the_version_records_which_predictor_serves_it_and_a_word_it_does_not_know_is_left_out() -> None:
    from driftline.api.modelversion import ModelVersionSpec

    obj = tj()
    spec = TrainingJobSpec.model_validate(obj["spec"])
    base = {"storageUri": "pvc://models/a", "sha256": "f" * 64}
    compiled = model_version(obj, spec, {"artifact": {**base, "predictor": "treelite"}}, 1, "rt:1")["spec"]
    assert compiled["artifact"]["predictor"] == "treelite" and "predictorReason" not in compiled["artifact"]
    reason = "the compiled trees differ by 3.2e-05 on the validation rows (tolerance 1e-06)"
    pickled = {"artifact": {**base, "predictor": "scikit-learn", "predictorReason": reason + "!" * 300}}
    plain = model_version(obj, spec, pickled, 1, "rt:1")["spec"]
    assert plain["artifact"]["predictor"] == "scikit-learn"
    assert plain["artifact"]["predictorReason"].startswith(reason) and len(plain["artifact"]["predictorReason"]) == 256
    future = model_version(obj, spec, {"artifact": {**base, "predictor": "onnx", "predictorReason": "x"}}, 1, "rt:1")
    assert "predictor" not in future["spec"]["artifact"] and "predictorReason" not in future["spec"]["artifact"]
    for rendered in (compiled, plain, future["spec"]):  # what the API server would be sent, valid
        ModelVersionSpec.model_validate(rendered)
