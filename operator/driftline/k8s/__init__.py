"""Thin side-effect wrappers over the Kubernetes API: 404 -> None, 409 -> AlreadyExists/Conflict, 5xx and time-outs
-> kopf.TemporaryError, so handlers stay level-based and retry with back-off instead of crashing."""
