"""Loaded by every pod process the runner starts (PYTHONPATH): gives the pod its own network identity.

A container binds 0.0.0.0 as on a real node; here all pods share one host, so a wildcard or loopback bind is moved to
the pod's own loopback address (DRIFTLINE_POD_IP). Nothing else is changed.
"""

import os
import socket
from typing import Any

_POD_IP = os.environ.get("DRIFTLINE_POD_IP")

if _POD_IP:
    _orig_bind = socket.socket.bind

    def _bind(self: socket.socket, address: Any) -> None:
        if (
            self.family == socket.AF_INET
            and isinstance(address, tuple)
            and address[0] in ("", "0.0.0.0", "127.0.0.1", "localhost")
        ):
            address = (_POD_IP, *address[1:])
        _orig_bind(self, address)

    socket.socket.bind = _bind  # type: ignore[method-assign,assignment]

# Read-only mounts (volumeMounts[].readOnly, ReadOnlyMany claims, configMap/secret volumes): a process shares the
# host's file system, so writes under those directories are refused here with EROFS, as a `ro` mount refuses them.
_READ_ONLY = tuple(os.path.realpath(p) for p in os.environ.get("DRIFTLINE_READONLY_PATHS", "").split(os.pathsep) if p)

if _READ_ONLY:
    import errno
    import sys

    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    # audit event -> the positions of its arguments that are paths it changes
    _MUTATIONS = {
        "os.remove": (0,),
        "os.rmdir": (0,),
        "os.mkdir": (0,),
        "os.truncate": (0,),
        "os.chmod": (0,),
        "os.chown": (0,),
        "os.utime": (0,),
        "os.symlink": (1,),
        "os.link": (1,),
        "os.rename": (0, 1),
        "shutil.rmtree": (0,),
    }

    def _under_read_only(path: Any) -> bool:
        if isinstance(path, int):
            return False
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(real == ro or real.startswith(ro + os.sep) for ro in _READ_ONLY)

    def _refuse(path: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def _audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
            if writes and path is not None and _under_read_only(path):
                _refuse(path)
        elif event in _MUTATIONS:
            for i in _MUTATIONS[event]:
                if args[i] is not None and _under_read_only(args[i]):
                    _refuse(args[i])

    sys.addaudithook(_audit)
