"""The model server: KServe V1 and Open Inference Protocol V2 over aiohttp, with streaming drift metrics."""

from driftline_runtime.server.main import main

__all__ = ["main"]
