"""`kubectl driftline`: a kubectl plugin to look at and steer Driftline's objects (view.py renders, cli.py asks
kubectl)."""
