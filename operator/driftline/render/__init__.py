"""Pure manifest builders: specs in, Kubernetes objects (dicts) out. No I/O."""
