"""Pure decisions: observed state in, what to do out. No kopf, Kubernetes or HTTP imports (import-linter checks)."""
