"""Driftline's API: the TrainingJob, ModelVersion and InferenceService types and the names they share.

Types and constants only (pydantic); no Kubernetes client, kopf or HTTP. The CRDs in crds/ and
docs/crd-reference.md are generated from these models: `python -m driftline.api.crdgen`.
"""
