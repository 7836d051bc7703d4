{{/*
The chart's name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "stowage.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: the release name, with the chart's name unless the release
name already contains it. Truncated to 63 characters: the Service name is a DNS label.
*/}}
{{- define "stowage.fullname" -}}
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
name-version, for the helm.sh/chart label.
*/}}
{{- define "stowage.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels that select the release's pods: stable across upgrades.
*/}}
{{- define "stowage.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stowage.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: plugin-service
{{- end }}

{{/*
Kubernetes' recommended labels, on every object.
*/}}
{{- define "stowage.labels" -}}
helm.sh/chart: {{ include "stowage.chart" . }}
{{ include "stowage.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: stowage
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "stowage.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stowage.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding the server's tls.crt, tls.key and ca.crt.
*/}}
{{- define "stowage.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "stowage.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/*
The allow list's ConfigMap.
*/}}
{{- define "stowage.allowListName" -}}
{{- printf "%s-allow" (include "stowage.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The allow list as the server reads it: {"allow":[{"identity":…,"plugins":[…]}]}.
*/}}
{{- define "stowage.allowListJson" -}}
{{- dict "allow" .Values.allowList | toPrettyJson }}
{{- end }}

{{/*
The container image: repository@digest when a digest is given, repository:tag otherwise.
*/}}
{{- define "stowage.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The names the server certificate covers: the headless Service's names (what a host dials with
dns:///<service>.<namespace>.svc:<port>) and a wildcard below each, for per-pod names.
*/}}
{{- define "stowage.serverDnsNames" -}}
{{- $svc := include "stowage.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $domain := .Values.clusterDomain }}
- {{ $svc }}
- {{ printf "%s.%s" $svc $ns }}
- {{ printf "%s.%s.svc" $svc $ns }}
- {{ printf "%s.%s.svc.%s" $svc $ns $domain }}
- {{ printf "*.%s.%s.svc" $svc $ns | quote }}
- {{ printf "*.%s.%s.svc.%s" $svc $ns $domain | quote }}
{{- range .Values.tls.certManager.extraDnsNames }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Refuses value combinations the schema cannot express.
*/}}
{{- define "stowage.validate" -}}
{{- $drainSeconds := divf .Values.drainMs 1000 }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $drainSeconds }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed drainMs (%v ms): raise terminationGracePeriodSeconds to at least %v, or lower drainMs, so the kubelet never kills a replica that is still draining" .Values.terminationGracePeriodSeconds .Values.drainMs (add1 (ceil $drainSeconds | int))) }}
{{- end }}
{{- if and (not .Values.tls.certManager.enabled) (not .Values.tls.secretName) }}
{{- fail "tls.certManager.enabled is false: set tls.secretName to an existing Secret holding tls.crt, tls.key and ca.crt" }}
{{- end }}
{{- $client := .Values.clientCertificate }}
{{- if and $client.enabled $client.namespace (ne $client.namespace .Release.Namespace) }}
{{- $issuer := default .Values.tls.certManager.issuerRef $client.issuerRef }}
{{- if ne (default "Issuer" $issuer.kind) "ClusterIssuer" }}
{{- fail (printf "clientCertificate.namespace is %s, not the release's namespace %s, and a namespaced Issuer issues only in its own namespace: set clientCertificate.issuerRef to a ClusterIssuer" $client.namespace .Release.Namespace) }}
{{- end }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (hasKey .Values.podDisruptionBudget "minAvailable") (hasKey .Values.podDisruptionBudget "maxUnavailable") }}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable, not both (write maxUnavailable: null to drop the default)" }}
{{- end }}
{{- end }}
