// The gateway's settings: one table that drives the flags, the environment variables, the TOML keys,
// `check-config` and the configuration reference in the README. Adding a setting here adds all of them.

import {
  absoluteUrl,
  booleanCodec,
  enumCodec,
  integerCodec,
  ipAddress,
  listCodec,
  mapCodec,
  stringCodec,
  type Codec,
} from "./codecs.js";
import { dns1123Label, dns1123Subdomain, quantity } from "../validation/kubernetes-names.js";
import { imageReferenceProblem, mirrorPrefixProblem } from "../registry/image-reference.js";
import { PREFLIGHT_MODES, type PreflightMode } from "../registry/preflight.js";

export const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const;
export const SANDBOX_RESOURCES = ["auto", "agent-sandbox", "pod"] as const;
export const SANDBOX_API_VERSIONS = ["auto", "v1beta1", "v1alpha1"] as const;
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export const MAX_PULL_SECRETS = 32;
export const DEFAULT_SANDBOX_IMAGE = "ghcr.io/nvidia/openshell-community/sandboxes/base:latest";

export type PullPolicy = (typeof PULL_POLICIES)[number];
export type SandboxResource = (typeof SANDBOX_RESOURCES)[number];
export type SandboxApiVersion = (typeof SANDBOX_API_VERSIONS)[number];

export interface Setting<T> {
  /** Human name used in messages. */
  readonly title: string;
  /** Long flag without the leading dashes. */
  readonly flag: string;
  readonly env: string;
  /** Key path below `[openshell]`, or null when the setting may not live in the file. */
  readonly toml: readonly string[] | null;
  /** A key of `[openshell.gateway]` the driver key inherits from when the driver table does not set it. */
  readonly tomlInherit?: readonly string[];
  readonly codec: Codec<T>;
  readonly default: T;
  readonly description: string;
  /** Placeholder for the flag's value in help text. */
  readonly placeholder: string;
  /** Never printed: check-config and errors show it redacted. */
  readonly secret?: boolean;
}

function setting<T>(def: Setting<T>): Setting<T> {
  return def;
}

const K8S = ["drivers", "kubernetes"] as const;
const GW = ["gateway"] as const;

const path = (value: string) => (value.includes("\0") ? "must not contain NUL characters" : undefined);

function dbUrlProblem(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.startsWith("sqlite:"))
    return value.length > "sqlite:".length ? undefined : "sqlite: needs a file path";
  return absoluteUrl(["postgres", "postgresql"])(value)
    ? "must be sqlite:PATH or postgres://user:password@host:port/database"
    : undefined;
}

export const SETTINGS = {
  // ---- listeners, logging, TLS, auth, storage ----
  bindAddress: setting({
    title: "bind address",
    flag: "bind-address",
    env: "OPENSHELL_BIND_ADDRESS",
    toml: [...GW, "bind_address"],
    codec: stringCodec(ipAddress),
    default: "0.0.0.0",
    placeholder: "IP",
    description: "Address every listener binds (API, health, metrics).",
  }),
  port: setting({
    title: "API port",
    flag: "port",
    env: "OPENSHELL_SERVER_PORT",
    toml: [...GW, "port"],
    codec: integerCodec(1, 65535),
    default: 8080,
    placeholder: "PORT",
    description: "Port serving gRPC, gRPC-Web and Connect JSON.",
  }),
  healthPort: setting({
    title: "health port",
    flag: "health-port",
    env: "OPENSHELL_HEALTH_PORT",
    toml: [...GW, "health_port"],
    codec: integerCodec(0, 65535),
    default: 0,
    placeholder: "PORT",
    description: "Port for /healthz and /readyz (plain HTTP); 0 disables it.",
  }),
  metricsPort: setting({
    title: "metrics port",
    flag: "metrics-port",
    env: "OPENSHELL_METRICS_PORT",
    toml: [...GW, "metrics_port"],
    codec: integerCodec(0, 65535),
    default: 0,
    placeholder: "PORT",
    description: "Port for Prometheus /metrics (plain HTTP); 0 disables it.",
  }),
  logLevel: setting({
    title: "log level",
    flag: "log-level",
    env: "OPENSHELL_LOG_LEVEL",
    toml: [...GW, "log_level"],
    codec: enumCodec(LOG_LEVELS, false),
    default: "info",
    placeholder: "LEVEL",
    description: "One of trace, debug, info, warn, error, fatal.",
  }),
  disableTls: setting({
    title: "disable TLS",
    flag: "disable-tls",
    env: "OPENSHELL_DISABLE_TLS",
    toml: [...GW, "disable_tls"],
    codec: booleanCodec(),
    default: false,
    placeholder: "BOOL",
    description: "Serve plaintext (development, or behind a TLS-terminating proxy). Logged loudly.",
  }),
  tlsCert: setting({
    title: "TLS certificate",
    flag: "tls-cert",
    env: "OPENSHELL_TLS_CERT",
    toml: [...GW, "tls", "cert_path"],
    codec: stringCodec(path),
    default: "",
    placeholder: "FILE",
    description: "PEM server certificate. Required unless TLS is disabled.",
  }),
  tlsKey: setting({
    title: "TLS key",
    flag: "tls-key",
    env: "OPENSHELL_TLS_KEY",
    toml: [...GW, "tls", "key_path"],
    codec: stringCodec(path),
    default: "",
    placeholder: "FILE",
    description: "PEM private key for the server certificate. Required unless TLS is disabled.",
  }),
  tlsClientCa: setting({
    title: "TLS client CA",
    flag: "tls-client-ca",
    env: "OPENSHELL_TLS_CLIENT_CA",
    toml: [...GW, "tls", "client_ca_path"],
    codec: stringCodec(path),
    default: "",
    placeholder: "FILE",
    description: "PEM CA bundle; when set, clients must present a certificate it signed (mTLS).",
  }),
  authTokenFile: setting({
    title: "auth token file",
    flag: "auth-token-file",
    env: "OPENSHELL_AUTH_TOKEN_FILE",
    toml: [...GW, "auth", "token_file"],
    codec: stringCodec(path),
    default: "",
    placeholder: "FILE",
    description: "File holding the bearer token clients must send (compared in constant time).",
  }),
  allowUnauthenticated: setting({
    title: "allow unauthenticated clients",
    flag: "allow-unauthenticated",
    env: "OPENSHELL_ALLOW_UNAUTHENTICATED",
    toml: [...GW, "auth", "allow_unauthenticated_users"],
    codec: booleanCodec(),
    default: false,
    placeholder: "BOOL",
    description: "Accept calls without a client certificate or token (development only). Logged loudly.",
  }),
  dbUrl: setting({
    title: "database URL",
    flag: "db-url",
    env: "OPENSHELL_DB_URL",
    toml: null,
    codec: stringCodec(dbUrlProblem),
    default: "",
    placeholder: "URL",
    secret: true,
    description:
      "sqlite:PATH or postgres://…; empty means SQLite in the data directory. Not allowed in the file (it may hold a password).",
  }),
  dataDir: setting({
    title: "data directory",
    flag: "data-dir",
    env: "OPENSHELL_DATA_DIR",
    toml: [...GW, "data_dir"],
    codec: stringCodec(path),
    default: "/var/lib/openshell",
    placeholder: "DIR",
    description: "Directory for the SQLite database.",
  }),

  reconcileIntervalSeconds: setting({
    title: "reconcile interval",
    flag: "reconcile-interval-seconds",
    env: "OPENSHELL_RECONCILE_INTERVAL_SECONDS",
    toml: [...GW, "reconcile_interval_seconds"],
    codec: integerCodec(1, 86400),
    default: 60,
    placeholder: "SECONDS",
    description: "How often records and Kubernetes objects are compared (a missing object is re-created).",
  }),
  orphanGraceSeconds: setting({
    title: "orphan grace period",
    flag: "orphan-grace-seconds",
    env: "OPENSHELL_ORPHAN_GRACE_SECONDS",
    toml: [...GW, "orphan_grace_seconds"],
    codec: integerCodec(0, 86400),
    default: 300,
    placeholder: "SECONDS",
    description: "How old a managed Kubernetes object without a record must be before reconcile deletes it.",
  }),

  // ---- Kubernetes driver ----
  kubeconfig: setting({
    title: "kubeconfig",
    flag: "kubeconfig",
    env: "OPENSHELL_KUBECONFIG",
    toml: [...K8S, "kubeconfig"],
    codec: stringCodec(path),
    default: "",
    placeholder: "FILE",
    description: "Kubeconfig file; empty means in-cluster config, then $KUBECONFIG, then ~/.kube/config.",
  }),
  namespace: setting({
    title: "sandbox namespace",
    flag: "sandbox-namespace",
    env: "OPENSHELL_SANDBOX_NAMESPACE",
    toml: [...K8S, "namespace"],
    tomlInherit: [...GW, "sandbox_namespace"],
    codec: stringCodec(dns1123Label),
    default: "openshell",
    placeholder: "NAMESPACE",
    description: "Namespace the sandboxes (and their pull secrets) live in.",
  }),
  defaultImage: setting({
    title: "default sandbox image",
    flag: "sandbox-image",
    env: "OPENSHELL_SANDBOX_IMAGE",
    toml: [...K8S, "default_image"],
    tomlInherit: [...GW, "default_image"],
    codec: stringCodec(imageReferenceProblem),
    default: DEFAULT_SANDBOX_IMAGE,
    placeholder: "IMAGE",
    description: "Image for sandboxes whose request names none.",
  }),
  imagePullPolicy: setting({
    title: "sandbox image pull policy",
    flag: "sandbox-image-pull-policy",
    env: "OPENSHELL_SANDBOX_IMAGE_PULL_POLICY",
    toml: [...K8S, "image_pull_policy"],
    codec: enumCodec(PULL_POLICIES, true),
    default: "",
    placeholder: "POLICY",
    description: "Always, IfNotPresent or Never; empty omits the field so Kubernetes applies its default.",
  }),
  imagePullSecrets: setting({
    title: "sandbox image pull secrets",
    flag: "sandbox-image-pull-secrets",
    env: "OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS",
    toml: [...K8S, "image_pull_secrets"],
    codec: listCodec(dns1123Subdomain, MAX_PULL_SECRETS),
    default: [] as string[],
    placeholder: "NAME[,NAME…]",
    description:
      "Secrets (in the sandbox namespace) every sandbox pod pulls with. Comma-separated and repeatable; trimmed, empties dropped, duplicates removed; at most 32.",
  }),
  serviceAccountName: setting({
    title: "sandbox service account",
    flag: "sandbox-service-account",
    env: "OPENSHELL_SANDBOX_SERVICE_ACCOUNT",
    toml: [...K8S, "service_account_name"],
    tomlInherit: [...GW, "service_account_name"],
    codec: stringCodec(dns1123Subdomain),
    default: "default",
    placeholder: "NAME",
    description: "Service account of sandbox pods (its token is never mounted).",
  }),
  mergeServiceAccountPullSecrets: setting({
    title: "merge service account pull secrets",
    flag: "sandbox-merge-service-account-pull-secrets",
    env: "OPENSHELL_SANDBOX_MERGE_SERVICE_ACCOUNT_PULL_SECRETS",
    toml: [...K8S, "merge_service_account_pull_secrets"],
    codec: booleanCodec(),
    default: false,
    placeholder: "BOOL",
    description:
      "Also list the service account's imagePullSecrets on the pod (Kubernetes applies them only when the pod lists none).",
  }),
  sandboxResource: setting({
    title: "sandbox resource kind",
    flag: "sandbox-resource",
    env: "OPENSHELL_SANDBOX_RESOURCE",
    toml: [...K8S, "sandbox_resource"],
    codec: enumCodec(SANDBOX_RESOURCES, false),
    default: "auto",
    placeholder: "KIND",
    description:
      "agent-sandbox (Sandbox custom resources), pod, or auto: agent-sandbox when agents.x-k8s.io is served.",
  }),
  sandboxApiVersion: setting({
    title: "agent-sandbox API version",
    flag: "sandbox-api-version",
    env: "OPENSHELL_SANDBOX_API_VERSION",
    toml: [...K8S, "sandbox_api_version"],
    codec: enumCodec(SANDBOX_API_VERSIONS, false),
    default: "auto",
    placeholder: "VERSION",
    description: "v1beta1, v1alpha1, or auto: the newest one the cluster serves (v1beta1 without a cluster).",
  }),
  grpcEndpoint: setting({
    title: "gateway callback endpoint",
    flag: "grpc-endpoint",
    env: "OPENSHELL_GRPC_ENDPOINT",
    toml: [...K8S, "grpc_endpoint"],
    codec: stringCodec(absoluteUrl(["http", "https"])),
    default: "",
    placeholder: "URL",
    description: "URL sandbox pods use to reach the gateway, passed as OPENSHELL_ENDPOINT.",
  }),
  clientTlsSecretName: setting({
    title: "client TLS secret",
    flag: "client-tls-secret-name",
    env: "OPENSHELL_CLIENT_TLS_SECRET_NAME",
    toml: [...K8S, "client_tls_secret_name"],
    tomlInherit: [...GW, "client_tls_secret_name"],
    codec: stringCodec((v) => (v === "" ? undefined : dns1123Subdomain(v))),
    default: "",
    placeholder: "NAME",
    description:
      "Secret (ca.crt, tls.crt, tls.key) mounted read-only into sandbox pods for calling the gateway.",
  }),
  hostGatewayIp: setting({
    title: "host gateway IP",
    flag: "host-gateway-ip",
    env: "OPENSHELL_HOST_GATEWAY_IP",
    toml: [...K8S, "host_gateway_ip"],
    tomlInherit: [...GW, "host_gateway_ip"],
    codec: stringCodec(ipAddress),
    default: "",
    placeholder: "IP",
    description: "When set, pods resolve host.openshell.internal and host.docker.internal to it.",
  }),
  defaultRuntimeClassName: setting({
    title: "default runtime class",
    flag: "sandbox-runtime-class-name",
    env: "OPENSHELL_SANDBOX_RUNTIME_CLASS_NAME",
    toml: [...K8S, "default_runtime_class_name"],
    codec: stringCodec((v) => (v === "" ? undefined : dns1123Subdomain(v))),
    default: "",
    placeholder: "NAME",
    description: "runtimeClassName for sandboxes whose request names none; empty omits it.",
  }),
  workspaceStorageSize: setting({
    title: "workspace storage size",
    flag: "sandbox-workspace-size",
    env: "OPENSHELL_K8S_WORKSPACE_DEFAULT_STORAGE_SIZE",
    toml: [...K8S, "workspace_default_storage_size"],
    codec: stringCodec((v) => (v === "" ? undefined : quantity(v))),
    default: "",
    placeholder: "QUANTITY",
    description:
      "When set (e.g. 2Gi), sandboxes get a /sandbox workspace seeded from the image by an init container: a PersistentVolumeClaim per Sandbox, an emptyDir in pod mode. Empty: no workspace volume.",
  }),
  workspaceStorageClass: setting({
    title: "workspace storage class",
    flag: "sandbox-workspace-storage-class",
    env: "OPENSHELL_K8S_WORKSPACE_STORAGE_CLASS",
    toml: [...K8S, "workspace_storage_class"],
    codec: stringCodec((v) => (v === "" ? undefined : dns1123Subdomain(v))),
    default: "",
    placeholder: "NAME",
    description: "StorageClass of the workspace claim; empty uses the cluster default.",
  }),
  pullSecretPreflight: setting<PreflightMode>({
    title: "pull secret preflight",
    flag: "pull-secret-preflight",
    env: "OPENSHELL_PULL_SECRET_PREFLIGHT",
    toml: [...K8S, "pull_secret_preflight"],
    codec: enumCodec(PREFLIGHT_MODES, false) as Codec<PreflightMode>,
    default: "enforce",
    placeholder: "MODE",
    description:
      "Before creating anything, check each pull secret exists in the namespace, has a type the kubelet reads, parses, and covers the image's registry: enforce (refuse the create), warn (log), off.",
  }),
  registryNodeCredentials: setting({
    title: "nodes carry registry credentials",
    flag: "registry-node-credentials",
    env: "OPENSHELL_REGISTRY_NODE_CREDENTIALS",
    toml: [...K8S, "registry_node_credentials"],
    codec: booleanCodec(),
    default: false,
    placeholder: "BOOL",
    description:
      "Nodes have credentials of their own (kubelet credential providers): a pull secret set without credentials for the image's registry is then only a warning.",
  }),
  registryProbe: setting({
    title: "registry probe",
    flag: "registry-probe",
    env: "OPENSHELL_REGISTRY_PROBE",
    toml: [...K8S, "registry_probe"],
    codec: booleanCodec(),
    default: false,
    placeholder: "BOOL",
    description:
      "Also ask the registry, with the matched credentials, whether the image's manifest exists (auth failures, unknown tags, TLS and reachability are then reported before a pod exists).",
  }),
  registryProbeCaFile: setting({
    title: "registry probe CA bundle",
    flag: "registry-probe-ca-file",
    env: "OPENSHELL_REGISTRY_PROBE_CA_FILE",
    toml: [...K8S, "registry_probe_ca_file"],
    codec: stringCodec(path),
    default: "",
    placeholder: "FILE",
    description: "PEM CA bundle the probe trusts in addition to the system roots (private registries).",
  }),
  registryProbeRealmAllowList: setting({
    title: "registry probe token realm allow-list",
    flag: "registry-probe-realm-allow",
    env: "OPENSHELL_REGISTRY_PROBE_REALM_ALLOW",
    toml: [...K8S, "registry_probe_realm_allow_list"],
    codec: listCodec(dns1123Subdomain, 32),
    default: [] as string[],
    placeholder: "HOST[,HOST…]",
    description:
      "Hosts other than the registry itself that may receive credentials as a Bearer token realm (e.g. auth.docker.io).",
  }),
  registryProbeTimeoutSeconds: setting({
    title: "registry probe timeout",
    flag: "registry-probe-timeout-seconds",
    env: "OPENSHELL_REGISTRY_PROBE_TIMEOUT_SECONDS",
    toml: [...K8S, "registry_probe_timeout_seconds"],
    codec: integerCodec(1, 60),
    default: 5,
    placeholder: "SECONDS",
    description: "Per-request timeout of the registry probe.",
  }),
  pullFailureGraceSeconds: setting({
    title: "pull failure grace period",
    flag: "pull-failure-grace-seconds",
    env: "OPENSHELL_PULL_FAILURE_GRACE_SECONDS",
    toml: [...K8S, "pull_failure_grace_seconds"],
    codec: integerCodec(0, 3600),
    default: 20,
    placeholder: "SECONDS",
    description:
      "How long a classified image pull failure may last before the sandbox goes to ERROR with its reason (a pull in progress counts as healthy).",
  }),
  registrySecretManagement: setting({
    title: "registry secret management",
    flag: "registry-secret-management",
    env: "OPENSHELL_REGISTRY_SECRET_MANAGEMENT",
    toml: [...K8S, "registry_secret_management"],
    codec: booleanCodec(),
    default: false,
    placeholder: "BOOL",
    description:
      "Serve the registry credential API (openshell registry secret create|update|list|delete); needs RBAC to write secrets in the namespace.",
  }),
  registryMirrors: setting({
    title: "registry mirrors",
    flag: "registry-mirror",
    env: "OPENSHELL_REGISTRY_MIRRORS",
    toml: [...K8S, "registry_mirrors"],
    codec: mapCodec(mirrorPrefixProblem, mirrorPrefixProblem, 64),
    default: {},
    placeholder: "FROM=TO",
    description:
      "Image rewrite rules for air-gapped clusters, e.g. docker.io=mirror.corp/dockerhub; the longest matching prefix wins. Repeatable or comma-separated; a TOML table in the file.",
  }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
type ValueOf<S> = S extends Setting<infer T> ? T : never;
export type GatewayConfig = { readonly [K in SettingKey]: ValueOf<(typeof SETTINGS)[K]> };

export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The settings rendering needs; render functions take only this part. */
export type KubernetesSettings = Pick<
  GatewayConfig,
  | "namespace"
  | "defaultImage"
  | "imagePullPolicy"
  | "imagePullSecrets"
  | "serviceAccountName"
  | "mergeServiceAccountPullSecrets"
  | "grpcEndpoint"
  | "clientTlsSecretName"
  | "hostGatewayIp"
  | "defaultRuntimeClassName"
  | "registryMirrors"
  | "workspaceStorageSize"
  | "workspaceStorageClass"
>;

export function defaultConfig(): GatewayConfig {
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) out[key] = structuredClone(SETTINGS[key].default);
  return out as GatewayConfig;
}
