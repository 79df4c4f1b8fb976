"""The built-in scikit-learn trainer behind `driftline-runtime train` (see docs/training-contract.md)."""

from driftline_runtime.train.run import main

__all__ = ["main"]
