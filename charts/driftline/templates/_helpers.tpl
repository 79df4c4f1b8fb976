{{/*
The chart name, or nameOverride.
*/}}
{{- define "driftline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources: <release>-<chart>, or just <release> when it already contains the chart
name, or fullnameOverride. Truncated to 63 characters (a DNS label).
*/}}
{{- define "driftline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Cluster-scoped objects (ClusterRoles, their bindings) carry the release namespace too: the same release name
installed in two namespaces must not fight over one ClusterRole.
*/}}
{{- define "driftline.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "driftline.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{/*
chart label: name-version.
*/}}
{{- define "driftline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the chart.
*/}}
{{- define "driftline.labels" -}}
helm.sh/chart: {{ include "driftline.chart" . }}
{{ include "driftline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftline
{{- end }}

{{/*
Labels that select the operator's pods (immutable in the Deployment's selector: never add to them).
*/}}
{{- define "driftline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "driftline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: the tag defaults to the chart's appVersion; a digest pins it.
*/}}
{{- define "driftline.imageRef" -}}
{{- $img := index . 0 }}
{{- $ctx := index . 1 }}
{{- $ref := printf "%s:%s" $img.repository (default $ctx.Chart.AppVersion $img.tag) }}
{{- if $img.digest }}
{{- $ref = printf "%s@%s" $ref $img.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/*
The kopf peering object's name: a ClusterKopfPeering (cluster-wide mode) is cluster-scoped, so its default name
carries the release namespace like the ClusterRole's.
*/}}
{{- define "driftline.peeringName" -}}
{{- if .Values.peering.name }}
{{- .Values.peering.name }}
{{- else if .Values.watchNamespaces }}
{{- include "driftline.fullname" . }}
{{- else }}
{{- include "driftline.clusterName" . }}
{{- end }}
{{- end }}

{{/*
What the operator does in a namespace, derived from the calls in operator/driftline/k8s/objects.py,
operator/driftline/k8s/events.py and kopf's own needs (docs/operations.md explains each rule). The same rules go
into the ClusterRole (cluster-wide mode) or into a Role per watched namespace (namespaced mode).
*/}}
{{- define "driftline.namespacedRules" -}}
# Driftline's resources: kopf lists and watches them to serve them, and patches them only while a handler retries
# (its progress, in kopf.driftline.dev/ annotations; the diff base stays in the operator's memory) and, on an
# InferenceService, while one of its timers or daemons runs (a rollout, a canary, drift: kopf's finalizer, removed
# when none runs). TrainingJobs and ModelVersions are also read one by one; InferenceServices only from the
# operator's view of its watches. ModelVersions are reconciled from watch events alone: kopf never patches them.
- apiGroups: ["driftline.dev"]
  resources: ["trainingjobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["driftline.dev"]
  resources: ["inferenceservices"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["driftline.dev"]
  resources: ["modelversions"]
  verbs: ["get", "list", "watch"]
# A finished training run registers a ModelVersion; drift starts a retraining TrainingJob.
- apiGroups: ["driftline.dev"]
  resources: ["modelversions", "trainingjobs"]
  verbs: ["create"]
# Every status is the operator's, written as merge patches of the status subresource.
- apiGroups: ["driftline.dev"]
  resources: ["trainingjobs/status", "modelversions/status", "inferenceservices/status"]
  verbs: ["patch"]
# Children carry ownerReferences with blockOwnerDeletion; where the OwnerReferencesPermissionEnforcement admission
# plugin runs (OpenShift), that requires update on the owner's finalizers.
- apiGroups: ["driftline.dev"]
  resources: ["trainingjobs/finalizers", "inferenceservices/finalizers"]
  verbs: ["update"]
# Training runs as a batch Job: created once, suspended or resumed by patch, watched to completion.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Pods are only listed: the trainer's termination message, the serving pods' IPs for canary and drift measurements,
# why pods do not start (with the pods sharing a claim, whose Events may say why).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Serving: Deployments written by server-side apply (its first apply creates), watched for rollout status; a
# finished or aborted canary's Deployment is deleted. Listed and watched with a label selector (the operator's own
# carry driftline.dev/inferenceservice) into the operator's memory; read by name only before the first apply, in case
# the name is someone else's.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The serving Service, by server-side apply too; listed, watched and read as the Deployments are.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# A retrain on live labels (spec.retrain.data LiveLabels): the pods' labelled rows, in a ConfigMap the TrainingJob
# mounts. Only created: never read, changed or deleted by the operator (the service owns it).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create"]
# The serving pods' PodDisruptionBudget (replicas > 1), by server-side apply; deleted when the service scales to one.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# One Event per decision (kopf posts core/v1 Events); a serving pod's Events are listed only while it is stuck
# creating, to say why on its InferenceService (a volume that will not attach or mount).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
{{- end }}

{{/*
kopf's discovery: it watches CustomResourceDefinitions to notice served resources appearing or going, and, when
limited to namespaces, lists and watches Namespaces to match them.
*/}}
{{- define "driftline.discoveryRules" -}}
# kopf's discovery: served CRDs appearing or going.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
# kopf matches the watched namespaces against the live list (only when it does not serve them all).
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}
