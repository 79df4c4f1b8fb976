"""`driftline-runtime publish`: upload an artifact directory to object storage by Driftline's rules, for a custom
trainer whose output is s3:// (DRIFTLINE_ARTIFACT_URI): the directory is checked first (files, formats, the model's
sha256 against metadata.json), signed into model.sig with DRIFTLINE_SIGNING_KEY when that is set and the directory
holds no model.sig yet (spec.signing), then uploaded under a prefix that must hold nothing, metadata.json last."""

from __future__ import annotations

import argparse
import os
import sys

from driftline_runtime import artifact, signing, storage
from driftline_runtime.termination import Failure


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Failure("InvalidArguments", message)


def main(argv: list[str]) -> int:
    p = _Parser(prog="driftline-runtime publish", description="Upload an artifact directory to object storage.")
    p.add_argument("--from", dest="source", required=True, help="the artifact directory (model, profile, metadata)")
    p.add_argument("--to", dest="target", required=True, help="s3://bucket/prefix, empty (DRIFTLINE_ARTIFACT_URI)")
    try:
        ns = p.parse_args(argv)
        prefix = storage.parse(ns.target)
        try:
            metadata, _ = artifact.read_artifact(ns.source)
        except artifact.ArtifactError as e:
            raise Failure("InvalidArtifact", f"{ns.source}: {e}") from e
        key = os.environ.get(signing.SIGNING_KEY_ENV)
        if key and not os.path.exists(os.path.join(ns.source, signing.SIGNATURE_FILE)):
            try:
                print(f"signed {ns.source} with {signing.sign(ns.source, key)}")
            except signing.SignatureError as e:
                raise Failure(e.reason, str(e)) from e
        artifact.publish(ns.source, prefix)
    except Failure as e:
        print(f"{e.reason}: {e.message}", file=sys.stderr)
        return 1
    print(f"published {ns.source} to {prefix} (sha256 {metadata['artifact']['sha256']})")
    return 0
