"""The krew release of `kubectl driftline`: the plugin as one Python zip application (its own modules and a pure-Python
PyYAML, nothing else: it runs on any python3 >= 3.11, no virtualenv), packed with the LICENSE into
kubectl-driftline.tar.gz, and the krew manifest (hack/krew/driftline.yaml) rendered for that archive as
krew-release-bot renders it on a release. Byte for byte reproducible: the same tree gives the same sha256.

Usage: python hack/krew/package.py OUT_DIR [--tag vX.Y.Z]   (the tag defaults to v + pyproject's version)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "driftline"
# The plugin's whole import closure (tests/integration/test_krew.py runs the archive's plugin isolated from any
# site-packages, so a module missing here fails there).
MODULES = ["__init__.py", "api/__init__.py", "api/constants.py", "plugin/__init__.py", "plugin/cli.py",
           "plugin/view.py"]  # fmt: skip
MAIN = """import sys

if sys.version_info < (3, 11):
    sys.exit("kubectl-driftline needs Python 3.11 or newer; python3 here is " + sys.version.split()[0])

from driftline.plugin.cli import main

sys.exit(main())
"""
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no build time leaks into the archive


def _zip_entry(z: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def zipapp() -> bytes:
    """The plugin as an executable zip: a shebang line, then the zip (Python runs a zip with a __main__.py)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        _zip_entry(z, "__main__.py", MAIN.encode())
        for rel in MODULES:
            _zip_entry(z, f"driftline/{rel}", (PACKAGE / rel).read_bytes())
        # PyYAML for -o yaml, its pure-Python modules only (it falls back to them without its C extension).
        lib = Path(yaml.__file__).parent
        for f in sorted(lib.glob("*.py")):
            _zip_entry(z, f"yaml/{f.name}", f.read_bytes())
        licence = next(Path(yaml.__file__).parents[1].glob("[Pp]y[Yy][Aa][Mm][Ll]-*.dist-info/licenses/LICENSE"))
        _zip_entry(z, "yaml/LICENSE", licence.read_bytes())
    return b"#!/usr/bin/env python3\n" + buf.getvalue()


def archive(plugin: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        files = (("kubectl-driftline", plugin, 0o755), ("LICENSE", (ROOT / "LICENSE").read_bytes(), 0o644))
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uname, info.gname = len(data), mode, 0, "root", "root"
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def render(template: str, tag: str, sha256: str) -> str:
    """The two template forms krew-release-bot's .krew.yaml uses: {{ .TagName }} and
    {{addURIAndSha "URL with {{ .TagName }}" .TagName }} (the URL and its sha256, on two lines)."""
    tag_name = re.compile(r"\{\{\s*\.TagName\s*\}\}")

    def uri_and_sha(m: re.Match[str]) -> str:
        return f"uri: {tag_name.sub(tag, m[1])}\n    sha256: {sha256}"

    out = re.sub(r'\{\{\s*addURIAndSha\s+"([^"]+)"\s+\.TagName\s*\}\}', uri_and_sha, template)
    out = tag_name.sub(tag, out)
    if "{{" in out:
        raise SystemExit(f"hack/krew/driftline.yaml: a template form this renderer does not know: {out}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--tag", default="v" + tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    ns = p.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    data = archive(zipapp())
    sha256 = hashlib.sha256(data).hexdigest()
    (ns.out / "kubectl-driftline.tar.gz").write_bytes(data)
    manifest = render((ROOT / "hack" / "krew" / "driftline.yaml").read_text(), ns.tag, sha256)
    (ns.out / "driftline.yaml").write_text(manifest)
    print(f"{ns.out}/kubectl-driftline.tar.gz ({len(data) // 1024} KiB, sha256 {sha256}) and {ns.out}/driftline.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
