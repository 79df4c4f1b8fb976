"""kopf glue, one module per kind: parse -> observe -> decide (pure) -> act (k8s/) -> status. Importing this package
registers every handler."""

from driftline.handlers import diffbase, drift, inferenceservice, modelversion, startup, trainingjob

__all__ = ["diffbase", "drift", "inferenceservice", "modelversion", "startup", "trainingjob"]
