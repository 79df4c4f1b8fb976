"""kopf glue, one module per kind: parse -> observe -> decide (pure) -> act (k8s/) -> status. Importing this package
registers every handler."""

# watches first: kopf runs an event's handlers in the order they were registered, and the view must hold the event's
# object before a handler reconciles on it.
from driftline.handlers import watches  # isort: skip
from driftline.handlers import diffbase, inferenceservice, modelversion, monitors, resync, startup, trainingjob

__all__ = ["diffbase", "inferenceservice", "modelversion", "monitors", "resync", "startup", "trainingjob", "watches"]
