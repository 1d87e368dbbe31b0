{{- define "lucid.fullname" -}}
{{- printf "%s-%s" .Release.Name "lucid" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lucid.labels" -}}
app.kubernetes.io/name: lucid-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lucid.selector" -}}
app.kubernetes.io/name: lucid-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Objects about the recorder pods, which the operator labels (builders.labels). */}}
{{- define "lucid.recorderLabels" -}}
app.kubernetes.io/name: lucid-recorder
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lucid.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (.Values.operator.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "lucid.recorderImage" -}}
{{- printf "%s:%s" .Values.recorder.image.repository (.Values.recorder.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* More than one replica: kopf peering elects the active one; otherwise standalone. */}}
{{- define "lucid.peering" -}}
{{- if gt (int .Values.operator.replicas) 1 }}true{{ end -}}
{{- end -}}

{{/* Namespaces whose recorder pods the NetworkPolicy covers. */}}
{{- define "lucid.sessionNamespaces" -}}
{{- $namespaces := .Values.networkPolicy.namespaces | default .Values.operator.watchNamespaces -}}
{{- if not $namespaces -}}
{{- fail "networkPolicy.enabled needs the namespaces where sessions run: set networkPolicy.namespaces (or operator.watchNamespaces)" -}}
{{- end -}}
{{- toJson $namespaces -}}
{{- end -}}
