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
