"""The pod runner: a kubelet stand-in that runs the project's own images as local processes.

It registers one Node with a heartbeat Lease, provisions PersistentVolumes for claims, and for each pod the real
scheduler binds to its node: resolves env and volumes, starts each container's command from the project's Python
environment on the pod's own loopback IP, runs probes, restarts per restartPolicy, and reports status the way a
kubelet does (phase, conditions, containerStatuses with exit codes and termination messages). Images it does not
know keep their pod Pending with ErrImageNeverPull: it never fakes a success.
"""
