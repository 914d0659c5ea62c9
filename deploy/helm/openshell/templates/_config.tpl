{{/*
The gateway's TOML configuration (the ConfigMap's gateway.toml). The pod template hashes it into
checksum/gateway-config, so any change rolls the gateway.
*/}}
{{- define "openshell.gatewayToml" -}}
{{- $v := .Values -}}
{{- $pullSecrets := include "openshell.sandboxPullSecretNames" . | fromJsonArray -}}
# Rendered by the openshell Helm chart; the keys are the gateway's (see its Configuration reference).
# The database URL is not here: it comes from OPENSHELL_DB_URL (a Secret) or defaults to SQLite in data_dir.
[openshell]
version = 1

[openshell.gateway]
bind_address = "0.0.0.0"
port = {{ int $v.service.port }}
health_port = {{ int $v.service.healthPort }}
metrics_port = {{ int $v.service.metricsPort }}
log_level = {{ $v.server.logLevel | toJson }}
disable_tls = {{ $v.server.disableTls }}
data_dir = {{ include "openshell.dataDir" . | toJson }}
reconcile_interval_seconds = {{ int $v.server.reconcileIntervalSeconds }}
orphan_grace_seconds = {{ int $v.server.orphanGraceSeconds }}
{{- if not $v.server.disableTls }}

[openshell.gateway.tls]
cert_path = {{ printf "%s/server/tls.crt" (include "openshell.tlsDir" .) | toJson }}
key_path = {{ printf "%s/server/tls.key" (include "openshell.tlsDir" .) | toJson }}
{{- if $v.server.tls.clientCaSecretName }}
client_ca_path = {{ printf "%s/client-ca/ca.crt" (include "openshell.tlsDir" .) | toJson }}
{{- end }}
{{- end }}

[openshell.gateway.auth]
{{- if $v.server.auth.tokenSecretName }}
token_file = {{ printf "%s/token" (include "openshell.authDir" .) | toJson }}
{{- end }}
allow_unauthenticated_users = {{ $v.server.auth.allowUnauthenticatedUsers }}

[openshell.drivers.kubernetes]
namespace = {{ include "openshell.sandboxNamespace" . | toJson }}
default_image = {{ $v.server.sandboxImage | toJson }}
{{- with $v.server.sandboxImagePullPolicy }}
image_pull_policy = {{ . | toJson }}
{{- end }}
{{- if $pullSecrets }}
image_pull_secrets = {{ $pullSecrets | toJson }}
{{- end }}
{{- with $v.server.sandboxServiceAccount }}
service_account_name = {{ . | toJson }}
{{- end }}
merge_service_account_pull_secrets = {{ $v.server.mergeServiceAccountPullSecrets }}
pull_secret_preflight = {{ $v.server.pullSecretPreflight | toJson }}
registry_node_credentials = {{ $v.server.registryNodeCredentials }}
registry_probe = {{ $v.server.registryProbe.enabled }}
{{- if $v.server.registryProbe.enabled }}
registry_probe_timeout_seconds = {{ int $v.server.registryProbe.timeoutSeconds }}
{{- with include "openshell.registryProbeRealms" . | fromJsonArray }}
registry_probe_realm_allow_list = {{ . | toJson }}
{{- end }}
{{- if include "openshell.registryCaBundle" . }}
registry_probe_ca_file = {{ printf "%s/ca.crt" (include "openshell.registryCaDir" .) | toJson }}
{{- end }}
{{- end }}
pull_failure_grace_seconds = {{ int $v.server.pullFailureGraceSeconds }}
registry_secret_management = {{ $v.registrySecrets.manage }}
sandbox_resource = {{ $v.server.sandboxResource | toJson }}
sandbox_api_version = {{ $v.server.sandboxApiVersion | toJson }}
grpc_endpoint = {{ include "openshell.grpcEndpoint" . | toJson }}
{{- with $v.server.tls.clientTlsSecretName }}
client_tls_secret_name = {{ . | toJson }}
{{- end }}
{{- with $v.server.hostGatewayIP }}
host_gateway_ip = {{ . | toJson }}
{{- end }}
{{- with $v.server.defaultRuntimeClassName }}
default_runtime_class_name = {{ . | toJson }}
{{- end }}
{{- with $v.server.workspaceDefaultStorageSize }}
workspace_default_storage_size = {{ . | toString | toJson }}
{{- end }}
{{- with $v.server.workspaceStorageClass }}
workspace_storage_class = {{ . | toJson }}
{{- end }}
{{- with $v.server.registryMirrors }}

[openshell.drivers.kubernetes.registry_mirrors]
{{- range $registry, $mirror := . }}
{{ $registry | toJson }} = {{ $mirror | toJson }}
{{- end }}
{{- end }}
{{- end }}
