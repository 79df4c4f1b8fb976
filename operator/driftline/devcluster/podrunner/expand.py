"""Pure helpers: Kubernetes `$(VAR)` expansion and the translation of in-container paths to host paths."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes semantics: `$(VAR)` becomes its value when defined, `$$` escapes, unknown references stay."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR.sub(sub, value)


def expand_all(values: Sequence[str], env: Mapping[str, str]) -> list[str]:
    return [expand(v, env) for v in values]


class PathMap:
    """Container paths (mountPaths, the termination-message path) mapped to host directories.

    Paths reach a process through its argv and env, so those strings are rewritten: a mapped path at a path boundary
    (start of the string or after `=`, `:` or `,`) is replaced by its host path; the longest mapping wins.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = {k.rstrip("/") or "/": v for k, v in mapping.items()}
        keys = sorted(self.mapping, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?:(?<=^)|(?<=[=:,]))(" + "|".join(re.escape(k) for k in keys) + r")(?=/|$|[:,\s])")
            if keys
            else None
        )

    def translate(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: self.mapping[m.group(1)], value)

    def translate_all(self, values: Sequence[str]) -> list[str]:
        return [self.translate(v) for v in values]

    def host_path(self, container_path: str) -> str | None:
        """The host path of an absolute container path, or None when it lies under no mapping."""
        translated = self.translate(container_path)
        return None if translated == container_path else translated
