{{/*
Names, labels and the value checks shared by every template.
*/}}

{{- define "openshell.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "openshell.fullname" -}}
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

{{- define "openshell.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "openshell.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openshell.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "openshell.labels" -}}
helm.sh/chart: {{ include "openshell.chart" . }}
{{ include "openshell.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openshell
{{- end }}

{{- define "openshell.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openshell.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Namespace of the sandboxes: server.sandboxNamespace, else the release namespace. */}}
{{- define "openshell.sandboxNamespace" -}}
{{- default .Release.Namespace .Values.server.sandboxNamespace }}
{{- end }}

{{/* Service account of sandbox pods, as the gateway applies it (its default is "default"). */}}
{{- define "openshell.sandboxServiceAccount" -}}
{{- default "default" .Values.server.sandboxServiceAccount }}
{{- end }}

{{/* Image of the gateway: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "openshell.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/* true when the gateway uses an external PostgreSQL database. */}}
{{- define "openshell.externalDb" -}}
{{- if .Values.server.externalDbSecret.name }}true{{ end }}
{{- end }}

{{/* statefulset or deployment. */}}
{{- define "openshell.workloadKind" -}}
{{- if .Values.workload.kind }}
{{- .Values.workload.kind }}
{{- else if include "openshell.externalDb" . }}
{{- "deployment" }}
{{- else }}
{{- "statefulset" }}
{{- end }}
{{- end }}

{{/*
Names of the sandbox pull secrets, trimmed, empties dropped, de-duplicated, in order, as a JSON list.
Only server.sandboxImagePullSecrets feeds this: the gateway's own .Values.imagePullSecrets never does.
*/}}
{{- define "openshell.sandboxPullSecretNames" -}}
{{- $names := list }}
{{- range .Values.server.sandboxImagePullSecrets }}
{{- $n := trim (toString (.name | default "")) }}
{{- if and $n (not (has $n $names)) }}
{{- $names = append $names $n }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* Secret names the gateway may read: the sandbox pull secrets plus rbac.extraReadableSecrets (JSON list). */}}
{{- define "openshell.readableSecretNames" -}}
{{- $names := include "openshell.sandboxPullSecretNames" . | fromJsonArray }}
{{- range .Values.rbac.extraReadableSecrets }}
{{- $n := trim (toString .) }}
{{- if and $n (not (has $n $names)) }}
{{- $names = append $names $n }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* Hosts of server.registryProbe.realmAllowList, trimmed, empties dropped, de-duplicated (JSON list). */}}
{{- define "openshell.registryProbeRealms" -}}
{{- $hosts := list }}
{{- range .Values.server.registryProbe.realmAllowList }}
{{- $h := trim (toString .) }}
{{- if and $h (not (has $h $hosts)) }}
{{- $hosts = append $hosts $h }}
{{- end }}
{{- end }}
{{- toJson $hosts }}
{{- end }}

{{/* true when the registry probe has a CA bundle (ConfigMap or Secret) to mount. */}}
{{- define "openshell.registryCaBundle" -}}
{{- with .Values.server.registryProbe.caBundle }}
{{- if or .configMapName .secretName }}true{{ end }}
{{- end }}
{{- end }}

{{/* URL sandboxes use to call the gateway. */}}
{{- define "openshell.grpcEndpoint" -}}
{{- if .Values.server.grpcEndpoint }}
{{- .Values.server.grpcEndpoint }}
{{- else }}
{{- printf "%s://%s.%s.svc.cluster.local:%d" (ternary "http" "https" .Values.server.disableTls) (include "openshell.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}
{{- end }}

{{/* Paths inside the gateway container. */}}
{{- define "openshell.configDir" -}}/etc/openshell{{- end }}
{{- define "openshell.dataDir" -}}/var/lib/openshell{{- end }}
{{- define "openshell.tlsDir" -}}/etc/openshell-tls{{- end }}
{{- define "openshell.authDir" -}}/etc/openshell-auth{{- end }}
{{- define "openshell.registryCaDir" -}}/etc/openshell-registry-ca{{- end }}

{{/*
Checks that need more than one value (the schema checks single values). Each message names the value,
the rule and the fix.
*/}}
{{- define "openshell.validate" -}}
{{- $v := .Values }}
{{- $kind := include "openshell.workloadKind" . }}
{{- $extDb := include "openshell.externalDb" . }}
{{- if and (eq $kind "deployment") (not $extDb) }}
{{- fail "workload.kind=deployment requires server.externalDbSecret.name: SQLite needs the StatefulSet's volume; set server.externalDbSecret.name to a Secret with a postgres:// URL, or leave workload.kind empty" }}
{{- end }}
{{- if and (gt (int $v.replicaCount) 1) (not $extDb) }}
{{- fail (printf "replicaCount=%d requires server.externalDbSecret.name: SQLite allows one writer; use an external PostgreSQL database or replicaCount=1" (int $v.replicaCount)) }}
{{- end }}
{{- if and (not $v.server.disableTls) (not $v.server.tls.certSecretName) }}
{{- fail "server.tls.certSecretName is empty but TLS is on: name a kubernetes.io/tls Secret with the serving certificate, or set server.disableTls=true (development or behind a TLS-terminating proxy)" }}
{{- end }}
{{- if and $v.server.disableTls $v.server.tls.clientCaSecretName }}
{{- fail "server.tls.clientCaSecretName is set but server.disableTls=true: client certificates need TLS; set server.tls.clientCaSecretName=\"\" or turn TLS on" }}
{{- end }}
{{- $mtls := and (not $v.server.disableTls) $v.server.tls.clientCaSecretName }}
{{- if not (or $mtls $v.server.auth.tokenSecretName $v.server.auth.allowUnauthenticatedUsers) }}
{{- fail "no client authentication: set server.tls.clientCaSecretName (mTLS, needs TLS) or server.auth.tokenSecretName (bearer token), or server.auth.allowUnauthenticatedUsers=true for development" }}
{{- end }}
{{- $ports := list (int $v.service.port) (int $v.service.healthPort) }}
{{- if ne (int $v.service.metricsPort) 0 }}{{ $ports = append $ports (int $v.service.metricsPort) }}{{ end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail (printf "service.port=%d, service.healthPort=%d and service.metricsPort=%d must differ: each gateway listener needs its own port" (int $v.service.port) (int $v.service.healthPort) (int $v.service.metricsPort)) }}
{{- end }}
{{- if and (ne $v.service.type "NodePort") (not (kindIs "invalid" $v.service.nodePort)) }}
{{- fail (printf "service.nodePort=%v is set but service.type=%s: set service.type=NodePort or service.nodePort=null" $v.service.nodePort $v.service.type) }}
{{- end }}
{{- $probe := $v.server.registryProbe }}
{{- if and $probe.caBundle.configMapName $probe.caBundle.secretName }}
{{- fail (printf "server.registryProbe.caBundle names both a ConfigMap (%s) and a Secret (%s): set only one of configMapName and secretName" $probe.caBundle.configMapName $probe.caBundle.secretName) }}
{{- end }}
{{- if and (include "openshell.registryCaBundle" .) (not $probe.enabled) }}
{{- fail "server.registryProbe.caBundle is set but server.registryProbe.enabled=false: only the registry probe uses the CA bundle; set server.registryProbe.enabled=true or remove the bundle" }}
{{- end }}
{{- if and (include "openshell.registryProbeRealms" . | fromJsonArray) (not $probe.enabled) }}
{{- fail "server.registryProbe.realmAllowList is set but server.registryProbe.enabled=false: only the registry probe sends credentials to token realms; set server.registryProbe.enabled=true or remove the list" }}
{{- end }}
{{- if and $v.registrySecrets.managedNames (not $v.registrySecrets.manage) }}
{{- fail "registrySecrets.managedNames is set but registrySecrets.manage=false: set registrySecrets.manage=true to grant write access to those Secrets, or remove the names" }}
{{- end }}
{{- end }}
