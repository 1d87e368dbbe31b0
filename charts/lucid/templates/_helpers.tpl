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
{{- toJson (.Values.networkPolicy.namespaces | default .Values.operator.watchNamespaces) -}}
{{- end -}}

{{/*
Checks the JSON schema cannot make: it neither compares quantities nor words its errors.
Called once, from deployment.yaml, so `helm install`, `upgrade`, `template` and dry runs
all stop here with every problem listed.
*/}}
{{- define "lucid.validate" -}}
{{- $problems := list -}}
{{- $problems = concat $problems (include "lucid.resourceProblems" (list "operator.resources" .Values.operator.resources) | fromJsonArray) -}}
{{- $problems = concat $problems (include "lucid.resourceProblems" (list "recorder.resources" .Values.recorder.resources) | fromJsonArray) -}}
{{- $problems = concat $problems (include "lucid.networkPolicyProblems" . | fromJsonArray) -}}
{{- if le (int .Values.operator.deleteTimeoutSeconds) (int .Values.recorder.terminationGraceSeconds) -}}
{{- $problems = append $problems (printf "operator.deleteTimeoutSeconds (%v) must exceed recorder.terminationGraceSeconds (%v): a deleted session's recorder needs its whole grace period to upload and to say what it could not; set operator.deleteTimeoutSeconds to at least %v" .Values.operator.deleteTimeoutSeconds .Values.recorder.terminationGraceSeconds (add (int .Values.recorder.terminationGraceSeconds) 10)) -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "these values cannot work:\n- %s" (join "\n- " $problems)) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH RESOURCES): every request above its limit, as a JSON list of messages. */}}
{{- define "lucid.resourceProblems" -}}
{{- $path := index . 0 -}}
{{- $resources := index . 1 | default dict -}}
{{- $limits := $resources.limits | default dict -}}
{{- $problems := list -}}
{{- range $name, $request := $resources.requests | default dict -}}
{{- if hasKey $limits $name -}}
{{- $limit := index $limits $name -}}
{{- if gt (include "lucid.quantity" $request | float64) (include "lucid.quantity" $limit | float64) -}}
{{- $problems = append $problems (printf "%s.requests.%s (%v) is more than %s.limits.%s (%v): Kubernetes refuses a pod whose request exceeds its limit. Lower the request or raise the limit." $path $name $request $path $name $limit) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $problems -}}
{{- end -}}

{{/*
A quantity as a number of base units (bytes, cores): "512Mi" is 536870912, "250m" 0.25.
The schema admits only digits, an optional fraction and one of these suffixes.
*/}}
{{- define "lucid.quantity" -}}
{{- $text := toString . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text -}}
{{- $suffix := trimPrefix $number $text -}}
{{- $binary := dict "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- $decimal := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 -}}
{{- if eq $suffix "m" -}}
{{- divf $number 1000 -}}
{{- else if hasKey $binary $suffix -}}
{{- mulf $number (index $binary $suffix) -}}
{{- else -}}
{{- mulf $number (index $decimal $suffix) -}}
{{- end -}}
{{- end -}}

{{/* What an enabled NetworkPolicy still needs, as a JSON list of messages. */}}
{{- define "lucid.networkPolicyProblems" -}}
{{- $np := .Values.networkPolicy -}}
{{- $problems := list -}}
{{- if $np.enabled -}}
{{- if not ($np.namespaces | default .Values.operator.watchNamespaces) -}}
{{- $problems = append $problems "networkPolicy.enabled=true needs the namespaces where sessions run: set networkPolicy.namespaces (or operator.watchNamespaces), e.g. --set networkPolicy.namespaces={team-a}" -}}
{{- end -}}
{{- $missing := list -}}
{{- if not $np.rdpTargetCIDRs -}}
{{- $missing = append $missing "networkPolicy.rdpTargetCIDRs (the RDP hosts to record, e.g. {10.40.0.0/16})" -}}
{{- end -}}
{{- if not $np.storageCIDRs -}}
{{- $missing = append $missing "networkPolicy.storageCIDRs (the MinIO/S3 endpoint, e.g. {10.50.0.10/32})" -}}
{{- end -}}
{{- if not $np.apiServerCIDRs -}}
{{- $missing = append $missing "networkPolicy.apiServerCIDRs (the API server endpoints, as listed by: kubectl get endpointslice -n default -l kubernetes.io/service-name=kubernetes)" -}}
{{- end -}}
{{- if $missing -}}
{{- $problems = append $problems (printf "networkPolicy.enabled=true needs the addresses recorder pods may reach (an empty list would cut every recorder off): set %s. See the NetworkPolicy section of docs/operations.md." (join "; " $missing)) -}}
{{- end -}}
{{- end -}}
{{- toJson $problems -}}
{{- end -}}
