{{/* Names, labels and the shared pieces of the pod specs. */}}

{{- define "tksh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: the release name, or "<release>-<chart>" when it does not contain the chart. */}}
{{- define "tksh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tksh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "tksh.labels" -}}
helm.sh/chart: {{ include "tksh.chart" . }}
app.kubernetes.io/name: {{ include "tksh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tksh
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator"). */}}
{{- define "tksh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tksh.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's objects: (dict "ctx" $ "component" "operator"). */}}
{{- define "tksh.componentLabels" -}}
{{ include "tksh.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tksh.operator.name" -}}
{{- printf "%s-operator" (include "tksh.fullname" .) -}}
{{- end -}}

{{- define "tksh.authz.name" -}}
{{- printf "%s-authz" (include "tksh.fullname" .) -}}
{{- end -}}

{{- define "tksh.operator.serviceAccountName" -}}
{{- default (include "tksh.operator.name" .) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "tksh.authz.serviceAccountName" -}}
{{- default (include "tksh.authz.name" .) .Values.authz.serviceAccount.name -}}
{{- end -}}

{{/* Cluster-wide operator (no namespaces given): ClusterKopfPeering; otherwise a KopfPeering per namespace. */}}
{{- define "tksh.operator.clusterwide" -}}
{{- if not .Values.operator.namespaces -}}true{{- end -}}
{{- end -}}

{{- define "tksh.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod security: the image's user 10001, never root, RuntimeDefault seccomp. Not configurable on purpose. */}}
{{- define "tksh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tksh.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Prometheus label matchers of the operator's scrape job (the ServiceMonitor's job is the Service's name). */}}
{{- define "tksh.operator.jobSelector" -}}
{{- printf "job=%q,namespace=%q" (include "tksh.operator.name" .) .Release.Namespace -}}
{{- end -}}
