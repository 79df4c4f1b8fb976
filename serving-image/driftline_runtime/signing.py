"""Artifact signatures: model.sig beside the artifact's files, in the OpenSSF model signing format (a Sigstore bundle
over a manifest of every file's digest), made and checked with the `model-signing` library, so a signature made here
verifies with `model_signing verify key` and one made by a user's pipeline with `model_signing sign key` verifies here.

Keys are elliptic-curve PEMs handed over as text (the trainer's from a Secret through DRIFTLINE_SIGNING_KEY, the
trusted public keys through DRIFTLINE_TRUSTED_KEYS): the library reads keys from files, so each one is written to a
private temporary file for the call. A signature proves that someone holding the private key vouched for exactly
these files; it says nothing of whether the pickle is safe to load (see docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNATURE_FILE = "model.sig"
SIGNING_KEY_ENV = "DRIFTLINE_SIGNING_KEY"
TRUSTED_KEYS_ENV = "DRIFTLINE_TRUSTED_KEYS"
_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # the ones the format supports
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\s.*?-----END \1-----", re.S)


class SignatureError(ValueError):
    """The artifact's signature is missing, malformed, or made by no trusted key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@contextmanager
def _key_file(pem: str) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="driftline-key-", suffix=".pem")  # 0600: the private key stays private
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(pem.strip() + "\n")
        yield path
    finally:
        os.remove(path)


def _hashing() -> Any:
    from model_signing import hashing

    # The signature lies inside the directory it signs, so it is left out of the manifest (the format records that,
    # and the verifier leaves it out too).
    return hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE])  # type: ignore[no-untyped-call]


def sign(directory: str, private_key_pem: str) -> str:
    """Sign every file of `directory` into directory/model.sig; returns the signing key's fingerprint."""
    from model_signing import signing

    signer = key_fingerprint(private_key_pem)  # a key the format cannot use fails here, with a clear reason
    with _key_file(private_key_pem) as key:
        config = signing.Config().set_hashing_config(_hashing())  # type: ignore[no-untyped-call]
        config.use_elliptic_key_signer(private_key=key).sign(directory, os.path.join(directory, SIGNATURE_FILE))
    return signer


def public_keys(text: str) -> list[str]:
    """The PEM blocks of `text` (several keys may be concatenated, as in a CA bundle)."""
    return [m.group(0) for m in _PEM.finditer(text)]


def fingerprint(public_key_pem: str) -> str:
    """sha256 of the key's DER SubjectPublicKeyInfo, as `sha256:<hex>`: names a key without showing it."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key_pem.encode())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def key_fingerprint(private_key_pem: str) -> str:
    """The fingerprint of a private key's public half (what a verifier's key is known by)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as e:
        raise SignatureError("InvalidSigningKey", f"{SIGNING_KEY_ENV} is no unencrypted private key PEM ({e})") from e
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        kind = key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
        raise SignatureError(
            "InvalidSigningKey", f"{SIGNING_KEY_ENV} holds a {kind} key: model signing takes P-256, P-384 or P-521"
        )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return fingerprint(public.decode())


def verify(directory: str, trusted: list[str]) -> str:
    """The fingerprint of the trusted key whose signature in directory/model.sig covers exactly the directory's files
    (none missing, none added, none changed); SignatureError otherwise."""
    from model_signing import verifying

    if not trusted:
        raise SignatureError("NoTrustedKeys", f"{TRUSTED_KEYS_ENV} holds no PEM public key")
    path = os.path.join(directory, SIGNATURE_FILE)
    if not os.path.isfile(path):
        raise SignatureError(
            "ArtifactNotSigned", f"{SIGNATURE_FILE} is missing: only artifacts signed by a trusted key are served"
        )
    errors = []
    for i, pem in enumerate(trusted):
        try:
            name = fingerprint(pem)
        except (ValueError, TypeError) as e:
            errors.append(f"key {i + 1} is no public key PEM ({_short(e)})")
            continue
        with _key_file(pem) as key:
            try:
                config = verifying.Config()  # type: ignore[no-untyped-call]
                config.use_elliptic_key_verifier(public_key=key).verify(directory, path)
                return name
            except Exception as e:  # the library raises ValueError, protobuf and cryptography errors alike
                errors.append(f"{name[:19]}: {_short(e)}")
    raise SignatureError(
        "ArtifactSignatureInvalid",
        f"{SIGNATURE_FILE} does not verify with any of the {len(trusted)} trusted key(s): " + "; ".join(errors),
    )


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if text.startswith("Signature mismatch"):  # the files differ from the signed manifest: name them, not digests
        changed = re.findall(r"Hash mismatch for \\?'([^'\\]+)", text)
        extra = re.search(r"Extra files found in model '[^']*': ([^\"\]]+)", text)
        missing = re.search(r"Missing files in model '[^']*': ([^\"\]]+)", text)
        parts = [f"{', '.join(changed)} changed since signing"] if changed else []
        parts += [f"not signed: {extra.group(1)}"] if extra else []
        parts += [f"signed but missing: {missing.group(1)}"] if missing else []
        return "; ".join(parts) or text[:200]
    return text.splitlines()[0][:200]
