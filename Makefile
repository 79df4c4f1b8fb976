# Driftline: every target installs what it needs first (Python env in .venv, Kubernetes binaries in ~/.cache/driftline).
SHELL := bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup k8s-bin seaweedfs prometheus gitops chromium images test test-unit lint krew lock crds chart demo kind-up cluster-up cluster-down bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## the Python environment (.venv), idempotent
	@bash hack/setup-python.sh

k8s-bin:  ## build the control-plane binaries from Go modules (cached; cold ~10 min on 2 cores)
	@bash hack/build-k8s.sh >/dev/null

seaweedfs:  ## SeaweedFS (the S3 server models are stored in) built from its Go module (cached; cold ~8 min on 2 cores)
	@bash hack/build-seaweedfs.sh >/dev/null

prometheus:  ## Prometheus from Debian for the drift tests (cached)
	@bash hack/fetch-prometheus.sh >/dev/null

images:  ## both images from their Dockerfiles with podman (or docker), cached by content; stand-in Python bases from Debian where the official image cannot be pulled; dist/images.json records their ids
	@bash hack/images.sh >/dev/null

chromium:  ## Debian's Chromium for the demo report's browser test (apt-get, once per machine)
	@bash hack/fetch-chromium.sh >/dev/null

gitops:  ## Lua 5.1 from Debian and the kstatus CLI from Go modules, for the GitOps health tests (cached)
	@bash hack/fetch-lua.sh >/dev/null
	@bash hack/kstatus/build.sh >/dev/null

# Two workers, a module's tests on one (its operator fixture): each worker starts its own control plane. Most e2e time
# is waiting on pods, timers and scrapes, so two halves the wall time on 2 cores (measured 23 -> 15 min).
test: setup k8s-bin seaweedfs prometheus gitops chromium images  ## every test: unit, integration and e2e against the real local control plane
	@$(PY) -m pytest -q -n 2 --dist loadfile

test-unit: setup  ## only the fast unit tests (no cluster)
	@$(PY) -m pytest -q -m unit

krew: setup  ## the plugin's krew release: dist/krew/kubectl-driftline.tar.gz and its rendered manifest (reproducible)
	@$(PY) hack/krew/package.py dist/krew

lint: setup  ## ruff, mypy --strict on the packages, import-linter layering contracts
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

lock: setup  ## re-lock the images' Python dependencies (exact versions with hashes) from the pyproject files
	@bash hack/lock.sh

crds: setup  ## regenerate crds/, the chart's crds/ and docs/crd-reference.md from the pydantic models
	@$(PY) -m driftline.api.crdgen

chart: setup k8s-bin  ## lint the Helm chart (charts/driftline) and check its generated CRDs
	@$(PY) -m driftline.api.crdgen --check
	@"$$($(PY) -c 'from driftline.devcluster.binaries import bin_dir; print(bin_dir())')/helm" lint --strict charts/driftline

demo: setup k8s-bin seaweedfs  ## the local demo on the embedded control plane
	@$(PY) -m driftline.cli demo

bench: setup k8s-bin  ## benchmarks against real peers; tables on stdout, JSON in bench/results/
	@$(PY) -m bench

KIND_TAG := 0.1.0
kind-up:  ## for users with Docker and kind: a kind cluster, both images built and loaded, the chart, the quick start (again: updates it)
	kind get clusters 2>/dev/null | grep -qx driftline || kind create cluster --config kind-config.yaml
	docker build -f operator/Dockerfile -t driftline/operator:$(KIND_TAG) .
	docker build -f serving-image/Dockerfile -t driftline/runtime:$(KIND_TAG) .
	kind load docker-image --name driftline driftline/operator:$(KIND_TAG) driftline/runtime:$(KIND_TAG)
	helm upgrade --install driftline charts/driftline --namespace driftline-system --create-namespace \
		--set image.tag=$(KIND_TAG) --set image.pullPolicy=Never --set runtimeImage.tag=$(KIND_TAG) --wait
	kubectl apply -f examples/kind/seaweedfs.yaml
	kubectl -n seaweedfs rollout status deployment/seaweedfs --timeout=300s
	kubectl apply -f examples/gitops/models/breast-cancer/namespace.yaml
	kubectl -n ml create secret generic models-s3 --dry-run=client -o yaml \
		--from-literal=AWS_ACCESS_KEY_ID=DRIFTLINEKINDEXAMPLE \
		--from-literal=AWS_SECRET_ACCESS_KEY=driftline-kind-example-secret-key | kubectl apply -f -
	kubectl apply -k examples/gitops/models/breast-cancer
	kubectl -n ml apply -f examples/kind/breast-cancer-nodeport.yaml
	@echo "training, then serving breast-cancer: kubectl -n ml get driftline; then POST to http://localhost:8080/v2/models/breast-cancer/infer"

cluster-up: setup k8s-bin  ## start a local control plane and print its KUBECONFIG
	@$(PY) -m driftline.cli dev cluster up

cluster-down: setup  ## stop it, leaving no process behind
	@$(PY) -m driftline.cli dev cluster down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
