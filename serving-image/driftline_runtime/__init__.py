"""Driftline model runtime: the built-in trainer and the model server, shipped as one image."""
