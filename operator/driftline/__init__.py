"""Driftline: train, version, promote, serve and watch drift of ML models on Kubernetes."""
