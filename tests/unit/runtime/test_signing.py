"""Artifact signatures: the trainer signs into model.sig, the server loads only what a trusted key signed, and both
speak the OpenSSF model signing format, so the library's own CLI verifies ours and we verify its."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sklearn.linear_model import LinearRegression

from driftline_runtime import signing
from driftline_runtime.artifact import write_artifact
from driftline_runtime.profile import build_profile
from driftline_runtime.server.model import ModelLoadError, load_model
from driftline_runtime.termination import Failure
from tests.keys import key_pair
from tests.unit.runtime.test_train_artifact import write_small

pytestmark = pytest.mark.unit


def serve(directory: Path, trusted: list[str] | None) -> str:
    """What the server says of the directory: the loaded version, or why it refuses to start."""
    sha = json.loads((directory / "metadata.json").read_text())["artifact"]["sha256"]
    try:
        return load_model(directory, "m", "1", sha, trusted).version
    except ModelLoadError as e:
        return str(e)


def signed_artifact(tmp_path: Path, private: str) -> Path:
    out = tmp_path / "signed"
    written = write_small(tmp_path / "unsigned")  # the same metadata, then the same artifact signed
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    model = LinearRegression().fit(x, [1.0, 3.0, 5.0, 7.0])
    metadata = {k: v for k, v in written.items() if k != "artifact"}
    profile = build_profile(x, model.predict(x), 2, task="regression")
    write_artifact(str(out), model, metadata, profile, signing_key=private)
    return out


def test_a_signed_artifact_serves_only_where_its_key_is_trusted(tmp_path: Path) -> None:
    private, public = key_pair()
    _, stranger = key_pair(ec.SECP384R1())
    out = signed_artifact(tmp_path, private)

    assert sorted(os.listdir(out)) == ["metadata.json", "model.joblib", "model.sig", "profile.json"]
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["artifact"]["signedBy"] == signing.fingerprint(public)

    assert serve(out, [public]) == "1"
    assert serve(out, [stranger, public]) == "1"  # any one trusted key will do
    broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    assert serve(out, [broken, public]) == "1"  # a broken key in the list takes no other's place
    assert "key 1 is no public key PEM" in serve(out, [broken])
    assert serve(out, None) == "1"  # a cluster that does not ask for signatures serves it too
    refused = serve(out, [stranger])
    assert refused.startswith("ArtifactSignatureInvalid: model.sig does not verify with any of the 1 trusted key(s)")
    assert "Key mismatch" in refused


def test_an_unsigned_or_changed_artifact_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    private, public = key_pair()
    write_small(tmp_path / "plain")
    assert serve(tmp_path / "plain", [public]).startswith("ArtifactNotSigned: model.sig is missing")
    assert serve(tmp_path / "plain", []).startswith("NoTrustedKeys:")  # trust asked for, but no key: refuse

    out = signed_artifact(tmp_path, private)
    (out / "profile.json").write_text((out / "profile.json").read_text().replace('"rows": 4', '"rows": 5'))
    assert serve(out, [public]).endswith("profile.json changed since signing")

    out = signed_artifact(tmp_path / "again", private)
    (out / "extra.py").write_text("import os\n")
    assert serve(out, [public]).endswith("not signed: extra.py")

    # The model file itself: the signature is checked before joblib ever opens it. The metadata's sha256 is changed
    # with it, as an attacker who rewrote both would, so only the signature stands in the way.
    out = signed_artifact(tmp_path / "third", private)
    (out / "model.joblib").write_bytes(b"not a pickle")
    doc = json.loads((out / "metadata.json").read_text())
    doc["artifact"]["sha256"] = hashlib.sha256(b"not a pickle").hexdigest()
    (out / "metadata.json").write_text(json.dumps(doc))
    refused = serve(out, [public])
    assert refused.startswith("ArtifactSignatureInvalid") and "metadata.json, model.joblib changed" in refused


def test_a_key_that_cannot_sign_fails_the_write_and_leaves_nothing(tmp_path: Path) -> None:
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cases = (("not a key", "no unencrypted private key PEM"), (ed.decode(), "holds a Ed25519PrivateKey key: model"))
    for key, words in cases:
        with pytest.raises(Failure) as failed:
            signed_artifact(tmp_path / str(len(key)), key)
        assert failed.value.reason == "InvalidSigningKey" and words in failed.value.message
        assert not (tmp_path / str(len(key)) / "signed").exists()


def test_several_keys_in_one_text_are_each_trusted() -> None:
    (_, a), (_, b) = key_pair(), key_pair()
    assert signing.public_keys(f"# team A\n{a}\n# team B\n{b}") == [a.strip(), b.strip()]
    assert signing.public_keys("") == []


def test_the_libraries_own_cli_verifies_our_signature_and_we_verify_its(tmp_path: Path) -> None:
    private, public = key_pair()
    (tmp_path / "pub.pem").write_text(public)
    (tmp_path / "key.pem").write_text(private)
    cli = [sys.executable, "-m", "model_signing"]

    ours = signed_artifact(tmp_path, private)
    verify = [*cli, "verify", "key", "--signature", str(ours / "model.sig"), "--public_key", str(tmp_path / "pub.pem")]
    done = subprocess.run([*verify, str(ours)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout

    theirs = tmp_path / "theirs"
    write_small(theirs)
    sign = [*cli, "sign", "key", "--private_key", str(tmp_path / "key.pem"), "--signature", str(theirs / "model.sig")]
    done = subprocess.run([*sign, str(theirs)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    assert serve(theirs, [public]) == "1"
