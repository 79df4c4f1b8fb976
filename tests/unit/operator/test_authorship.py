"""decide.authorship: which rights a TrainingJob's spec asks of its author, and what the operator says when the author
is unknown or lacks them."""

from __future__ import annotations

import pytest

from driftline.decide import authorship
from driftline.decide.authorship import Author, Need

pytestmark = pytest.mark.unit

TEMPLATE = {"spec": {"containers": [{"name": "trainer", "image": "registry.example/trainer:1"}]}}


def test_the_author_is_read_from_the_recorded_annotations() -> None:
    assert authorship.author_of(None) is None
    assert authorship.author_of({"driftline.dev/author": ""}) is None
    recorded = {"driftline.dev/author": "alice", "driftline.dev/author-groups": "team-a\n\nsystem:authenticated"}
    assert authorship.author_of(recorded) == Author("alice", ("team-a", "system:authenticated"))
    assert authorship.author_of(authorship.stamp(Author("bob", ("g",)))) == Author("bob", ("g",))


def test_the_built_in_trainer_on_public_data_needs_nothing() -> None:
    spec = {"model": "m", "dataset": {"uri": "sklearn://iris"}, "estimator": "sklearn.svm.SVC"}
    assert authorship.trainingjob_needs(spec) == []
    assert authorship.refusal("ns", None, [], []) is None


def test_each_escalating_field_names_the_right_it_needs() -> None:
    spec = {
        "template": TEMPLATE,
        "promotion": {"auto": True},
        "dataset": {"uri": "https://x/d.csv", "authorization": {"secretKeyRef": {"name": "token", "key": "t"}}},
        "storage": {"s3": {"credentials": {
            "accessKeyId": {"name": "keys", "key": "id"}, "secretAccessKey": {"name": "keys", "key": "secret"}}}},
        "signing": {"secretKeyRef": {"name": "signer", "key": "private.pem"}},
    }  # fmt: skip
    assert [(n.field, n.verb, n.group, n.resource, n.name) for n in authorship.trainingjob_needs(spec)] == [
        ("spec.template", "create", "", "pods", None),
        ("spec.promotion.auto", "promote", "driftline.dev", "modelversions", None),
        ("spec.dataset.authorization", "get", "", "secrets", "token"),
        ("spec.signing.secretKeyRef", "get", "", "secrets", "signer"),
        ("spec.storage.s3.credentials.accessKeyId", "get", "", "secrets", "keys"),
        ("spec.storage.s3.credentials.secretAccessKey", "get", "", "secrets", "keys"),
    ]
    image_only = authorship.trainingjob_needs({"image": "registry.example/runtime:2", "promotion": {"auto": True}})
    assert [(n.field, n.resource) for n in image_only] == [("spec.image", "pods")]  # the built-in trainer's metrics


def test_a_refusal_names_the_field_the_user_and_the_missing_right() -> None:
    pods = Need("spec.template", "a custom pod template or image is creating pods", "create", "pods")
    secret = Need("spec.dataset.authorization", "the training pod would read this Secret for them", "get", "secrets",
                  name="token")  # fmt: skip
    alice = Author("alice", ("team-a",))
    assert authorship.refusal("ns", alice, [pods, secret], []) is None
    assert authorship.refusal("ns", alice, [pods, secret], [pods, secret]) == (
        "spec.template: a custom pod template or image is creating pods; alice may not create pods in namespace ns "
        "(checked by the operator as the recorded author); spec.dataset.authorization: the training pod would read "
        "this Secret for them; alice may not get Secret token in namespace ns (checked by the operator as the "
        "recorded author)"
    )
    promote = Need("spec.promotion.auto", "promoting", "promote", "modelversions", "driftline.dev")
    assert "may not promote modelversions in namespace ns (the verb promote on modelversions.driftline.dev)" in str(
        authorship.refusal("ns", alice, [promote], [promote])
    )


def test_without_a_recorded_author_a_spec_that_needs_rights_is_refused() -> None:
    pods = Need("spec.template", "creating pods", "create", "pods")
    message = authorship.refusal("ns", None, [pods, pods], [])
    assert message is not None and message.startswith("spec.template: no author is recorded")
    assert "admission.enabled" in message


def test_an_inferenceservice_needs_pods_only_for_its_own_image() -> None:
    assert authorship.inferenceservice_needs({"model": "m", "retrain": {"template": {"template": TEMPLATE}}}) == []
    (need,) = authorship.inferenceservice_needs({"model": "m", "image": "registry.example/serve:1"})
    assert (need.field, need.verb, need.resource) == ("spec.image", "create", "pods")


def test_a_service_account_named_in_the_template_needs_use_of_it() -> None:
    named = {"template": {"spec": {**TEMPLATE["spec"], "serviceAccountName": "deployer"}}}
    needs = authorship.trainingjob_needs(named)
    assert [(n.field, n.verb, n.resource, n.name) for n in needs][1:] == [
        ("spec.template.spec.serviceAccountName", "use", "serviceaccounts", "deployer")
    ]
    assert "alice may not use ServiceAccount deployer in namespace ns" in str(
        authorship.refusal("ns", Author("alice"), needs, needs[1:])
    )
    default = {"template": {"spec": {**TEMPLATE["spec"], "serviceAccountName": "default"}}}
    assert len(authorship.trainingjob_needs(default)) == 1  # creating pods only: default is every pod's
