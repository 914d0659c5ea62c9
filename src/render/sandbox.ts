// Renders a sandbox request and the configuration into the Kubernetes object the driver creates:
// an agent-sandbox Sandbox (v1beta1 or v1alpha1) whose podTemplate carries the pod, or a plain Pod.
// Pure: no I/O. Everything the driver creates is decided here.

import type {
  V1Container,
  V1EnvVar,
  V1LocalObjectReference,
  V1ObjectMeta,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodSpec,
  V1ResourceRequirements,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import type { KubernetesSettings } from "../config/settings.js";
import { applyRegistryMirrors } from "../registry/image-reference.js";
import { DEFAULT_WORKSPACE, kubernetesName, type SandboxRequest } from "./request.js";

export const AGENT_SANDBOX_GROUP = "agents.x-k8s.io";
export const AGENT_CONTAINER = "agent";
export const LABELS = {
  sandboxId: "openshell.ai/sandbox-id",
  sandboxName: "openshell.ai/sandbox-name",
  workspace: "openshell.ai/sandbox-workspace",
  managedBy: "openshell.ai/managed-by",
} as const;
export const MANAGED_BY = "openshell";
export const ANNOTATIONS = {
  requestedImage: "openshell.ai/requested-image",
  effectiveImage: "openshell.ai/effective-image",
} as const;
const CLIENT_TLS_VOLUME = "openshell-client-tls";
const CLIENT_TLS_MOUNT = "/etc/openshell-tls/client";
const GPU_RESOURCE = "nvidia.com/gpu";
export const WORKSPACE_VOLUME = "workspace";
export const WORKSPACE_MOUNT = "/sandbox";
const WORKSPACE_SEED_MOUNT = "/workspace-seed";
const WORKSPACE_SENTINEL = ".openshell-workspace-seeded";
// Seeds the workspace volume from the image's own /sandbox once; a tar pipe keeps symlinks intact.
const WORKSPACE_SEED_SCRIPT = [
  `if [ ! -e ${WORKSPACE_SEED_MOUNT}/${WORKSPACE_SENTINEL} ]; then`,
  `  if [ -d ${WORKSPACE_MOUNT} ]; then (cd ${WORKSPACE_MOUNT} && tar cf - .) | (cd ${WORKSPACE_SEED_MOUNT} && tar xf -); fi`,
  `  touch ${WORKSPACE_SEED_MOUNT}/${WORKSPACE_SENTINEL}`,
  "fi",
].join("\n");

export type SandboxApiVersionName = "v1beta1" | "v1alpha1";

export type RenderTarget =
  | { readonly resource: "pod" }
  | { readonly resource: "agent-sandbox"; readonly apiVersion: SandboxApiVersionName };

export interface RenderInputs {
  readonly request: SandboxRequest;
  readonly settings: KubernetesSettings;
  readonly target: RenderTarget;
  /**
   * The sandbox service account's imagePullSecrets, read by the caller. Merged only when
   * `mergeServiceAccountPullSecrets` is on (Kubernetes ignores them once the pod lists any).
   */
  readonly serviceAccountPullSecrets?: readonly string[];
}

export interface SandboxObject {
  apiVersion: string;
  kind: "Sandbox";
  metadata: V1ObjectMeta;
  spec: {
    podTemplate: { metadata: V1ObjectMeta; spec: V1PodSpec };
    volumeClaimTemplates?: V1PersistentVolumeClaim[];
    operatingMode?: "Running" | "Suspended";
    replicas?: number;
  };
}

export type RenderedObject = V1Pod | SandboxObject;

export interface Rendered {
  readonly object: RenderedObject;
  /** Image the request asked for (or the default), before mirror rewriting. */
  readonly requestedImage: string;
  /** Image the pod pulls. */
  readonly effectiveImage: string;
  /** The merged, de-duplicated pod-level pull secrets, in order. */
  readonly imagePullSecrets: readonly string[];
}

/**
 * Merges pull secrets in the order configured → service account → per sandbox, trimming names,
 * dropping empties and keeping the first occurrence of each.
 */
export function mergePullSecrets(...groups: readonly (readonly string[] | undefined)[]): string[] {
  const seen = new Set<string>();
  const merged: string[] = [];
  for (const name of groups.flatMap((g) => g ?? [])) {
    const trimmed = name.trim();
    if (trimmed === "" || seen.has(trimmed)) continue;
    seen.add(trimmed);
    merged.push(trimmed);
  }
  return merged;
}

export function managedLabels(request: SandboxRequest): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.sandboxId]: request.id,
    [LABELS.sandboxName]: request.name,
    [LABELS.managedBy]: MANAGED_BY,
  };
  if (request.workspace && request.workspace !== DEFAULT_WORKSPACE)
    labels[LABELS.workspace] = request.workspace;
  return labels;
}

function sortedEntries(map: Readonly<Record<string, string>> | undefined): [string, string][] {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function nonEmpty<T extends object>(value: T): T | undefined {
  return Object.keys(value).length > 0 ? value : undefined;
}

function renderResources(request: SandboxRequest): V1ResourceRequirements | undefined {
  const pick = (list: { cpu?: string; memory?: string } | undefined) => {
    const out: Record<string, string> = {};
    if (list?.cpu) out.cpu = list.cpu;
    if (list?.memory) out.memory = list.memory;
    return out;
  };
  const requests = pick(request.resources?.requests);
  const limits = pick(request.resources?.limits);
  if (request.gpu && request.gpu > 0) limits[GPU_RESOURCE] = String(request.gpu);
  const out: V1ResourceRequirements = {};
  if (nonEmpty(requests)) out.requests = requests;
  if (nonEmpty(limits)) out.limits = limits;
  return nonEmpty(out);
}

function renderEnv(request: SandboxRequest, settings: KubernetesSettings): V1EnvVar[] {
  const env: V1EnvVar[] = sortedEntries(request.environment).map(([name, value]) => ({ name, value }));
  env.push(
    { name: "OPENSHELL_SANDBOX_ID", value: request.id },
    { name: "OPENSHELL_SANDBOX", value: request.name },
  );
  if (settings.grpcEndpoint) env.push({ name: "OPENSHELL_ENDPOINT", value: settings.grpcEndpoint });
  if (settings.clientTlsSecretName) {
    env.push(
      { name: "OPENSHELL_TLS_CA", value: `${CLIENT_TLS_MOUNT}/ca.crt` },
      { name: "OPENSHELL_TLS_CERT", value: `${CLIENT_TLS_MOUNT}/tls.crt` },
      { name: "OPENSHELL_TLS_KEY", value: `${CLIENT_TLS_MOUNT}/tls.key` },
    );
  }
  return env;
}

/** Renders the pod spec shared by both resource kinds. */
export function renderPodSpec(
  inputs: RenderInputs,
  image: string,
  pullSecrets: readonly string[],
): V1PodSpec {
  const { request, settings } = inputs;
  const mounts: V1VolumeMount[] = [];
  const volumes: V1Volume[] = [];
  const initContainers: V1Container[] = [];
  const pullPolicy = settings.imagePullPolicy ? { imagePullPolicy: settings.imagePullPolicy } : {};
  if (settings.workspaceStorageSize) {
    mounts.push({ name: WORKSPACE_VOLUME, mountPath: WORKSPACE_MOUNT });
    initContainers.push({
      name: "workspace-init",
      image,
      ...pullPolicy,
      command: ["sh", "-c", WORKSPACE_SEED_SCRIPT],
      volumeMounts: [{ name: WORKSPACE_VOLUME, mountPath: WORKSPACE_SEED_MOUNT }],
      securityContext: { allowPrivilegeEscalation: false },
    });
    // agent-sandbox derives the volume from spec.volumeClaimTemplates; a plain pod gets an emptyDir.
    if (inputs.target.resource === "pod") {
      volumes.push({ name: WORKSPACE_VOLUME, emptyDir: { sizeLimit: settings.workspaceStorageSize } });
    }
  }
  if (settings.clientTlsSecretName) {
    mounts.push({ name: CLIENT_TLS_VOLUME, mountPath: CLIENT_TLS_MOUNT, readOnly: true });
    volumes.push({
      name: CLIENT_TLS_VOLUME,
      // 0400: the key is readable only by the container's own user.
      secret: { secretName: settings.clientTlsSecretName, defaultMode: 0o400 },
    });
  }

  const container: V1Container = {
    name: AGENT_CONTAINER,
    image,
    ...pullPolicy,
    ...(request.command?.length ? { command: [...request.command] } : {}),
    ...(request.args?.length ? { args: [...request.args] } : {}),
    env: renderEnv(request, settings),
    ...(renderResources(request) ? { resources: renderResources(request) } : {}),
    ...(mounts.length ? { volumeMounts: mounts } : {}),
    securityContext: { allowPrivilegeEscalation: false },
  };

  const runtimeClassName = request.runtimeClassName || settings.defaultRuntimeClassName;
  const refs: V1LocalObjectReference[] = pullSecrets.map((name) => ({ name }));
  const spec: V1PodSpec = {
    serviceAccountName: settings.serviceAccountName,
    automountServiceAccountToken: false,
    // The sandbox's main process is never re-run behind the user's back; its exit is reported instead.
    restartPolicy: "Never",
    enableServiceLinks: false,
    securityContext: { seccompProfile: { type: "RuntimeDefault" } },
    ...(refs.length ? { imagePullSecrets: refs } : {}),
    ...(runtimeClassName ? { runtimeClassName } : {}),
    ...(nonEmpty(request.nodeSelector ?? {})
      ? { nodeSelector: Object.fromEntries(sortedEntries(request.nodeSelector)) }
      : {}),
    ...(request.tolerations?.length ? { tolerations: request.tolerations.map((t) => ({ ...t })) } : {}),
    ...(settings.hostGatewayIp
      ? {
          hostAliases: [
            { ip: settings.hostGatewayIp, hostnames: ["host.openshell.internal", "host.docker.internal"] },
          ],
        }
      : {}),
    ...(initContainers.length ? { initContainers } : {}),
    containers: [container],
    ...(volumes.length ? { volumes } : {}),
  };
  return spec;
}

function workspaceClaim(settings: KubernetesSettings): V1PersistentVolumeClaim {
  return {
    metadata: { name: WORKSPACE_VOLUME },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: settings.workspaceStorageSize } },
      ...(settings.workspaceStorageClass ? { storageClassName: settings.workspaceStorageClass } : {}),
    },
  };
}

/** Renders what the driver creates for a request. The request must have passed validateSandboxRequest. */
export function renderSandbox(inputs: RenderInputs): Rendered {
  const { request, settings, target } = inputs;
  const requestedImage = request.image || settings.defaultImage;
  const { effective } = applyRegistryMirrors(requestedImage, settings.registryMirrors);
  const pullSecrets = mergePullSecrets(
    settings.imagePullSecrets,
    settings.mergeServiceAccountPullSecrets ? inputs.serviceAccountPullSecrets : undefined,
    request.imagePullSecrets,
  );

  const name = kubernetesName(request.name, request.workspace);
  const labels = managedLabels(request);
  const annotations: Record<string, string> = { [ANNOTATIONS.requestedImage]: requestedImage };
  if (effective !== requestedImage) annotations[ANNOTATIONS.effectiveImage] = effective;

  const podMetadata: V1ObjectMeta = {
    labels: { ...Object.fromEntries(sortedEntries(request.labels)), ...labels },
    ...(nonEmpty(request.annotations ?? {})
      ? { annotations: Object.fromEntries(sortedEntries(request.annotations)) }
      : {}),
  };
  const podSpec = renderPodSpec(inputs, effective, pullSecrets);

  let object: RenderedObject;
  if (target.resource === "pod") {
    object = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: settings.namespace,
        labels: podMetadata.labels,
        annotations: { ...podMetadata.annotations, ...annotations },
      },
      spec: podSpec,
    };
  } else {
    object = {
      apiVersion: `${AGENT_SANDBOX_GROUP}/${target.apiVersion}`,
      kind: "Sandbox",
      metadata: { name, namespace: settings.namespace, labels, annotations },
      spec: {
        podTemplate: { metadata: podMetadata, spec: podSpec },
        ...(settings.workspaceStorageSize ? { volumeClaimTemplates: [workspaceClaim(settings)] } : {}),
        ...(target.apiVersion === "v1beta1" ? { operatingMode: "Running" as const } : { replicas: 1 }),
      },
    };
  }
  return { object, requestedImage, effectiveImage: effective, imagePullSecrets: pullSecrets };
}
