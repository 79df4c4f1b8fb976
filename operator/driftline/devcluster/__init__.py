"""A real local Kubernetes control plane for tests and the demo.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the upstream binaries, built from Go modules
(hack/build-k8s.sh). Only the kubelet is replaced: the pod runner registers a Node and runs the containers of the
project's own images as local processes, each pod on its own loopback address. The operator never imports this
package (checked by import-linter).
"""
