// Conversions between upstream's wire messages (openshell.v1) and the gateway's own types.
// Fields we do not implement are refused with a message rather than silently ignored.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  SandboxConditionSchema,
  SandboxPhase,
  SandboxRestartPolicy,
  SandboxSchema,
  SandboxStatusSchema,
  PlatformEventSchema,
  type CreateSandboxRequest,
  type PlatformEvent as PlatformEventMessage,
  type Sandbox,
} from "../../gen/openshell/v1/openshell_pb.js";
import { ObjectMetaSchema, type WorkspaceSelector } from "../../gen/openshell/datamodel/v1/datamodel_pb.js";
import { DEFAULT_WORKSPACE, keyInField, type ResourceList, type Toleration } from "../../render/request.js";
import type { Phase, PlatformEvent } from "../../kubernetes/types.js";
import type { CreateInput, SandboxView, StoredSpec } from "../sandboxes.js";
import { describeValue } from "../../validation/kubernetes-names.js";
import { fixFor, type PullFailureReason } from "../../registry/classify.js";

function unsupported(field: string, hint = "this gateway does not implement it yet"): ConnectError {
  return new ConnectError(`unsupported field ${field}: ${hint}`, Code.Unimplemented);
}

function invalid(field: string, message: string): ConnectError {
  return new ConnectError(`invalid ${field}: ${message}`, Code.InvalidArgument);
}

export function workspaceOf(scope: WorkspaceSelector | undefined): string {
  if (scope?.selection.case === "workspace" && scope.selection.value !== "") return scope.selection.value;
  return DEFAULT_WORKSPACE;
}

/** Reads template.resources ({requests, limits} with cpu and memory). */
function resourcesFrom(
  struct: JsonObject | undefined,
): { requests?: ResourceList; limits?: ResourceList } | undefined {
  if (!struct || Object.keys(struct).length === 0) return undefined;
  const out: { requests?: ResourceList; limits?: ResourceList } = {};
  for (const [kind, value] of Object.entries(struct)) {
    if (kind !== "requests" && kind !== "limits") {
      throw invalid(`spec.template.resources.${keyInField(kind)}`, "only requests and limits are allowed");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw invalid(`spec.template.resources.${kind}`, "must be an object of resource quantities");
    }
    const list: Record<string, string> = {};
    for (const [resource, quantity] of Object.entries(value)) {
      if (resource !== "cpu" && resource !== "memory") {
        throw invalid(
          `spec.template.resources.${kind}.${keyInField(resource)}`,
          "only cpu and memory are supported; request GPUs with spec.resource_requirements.gpu.count",
        );
      }
      if (typeof quantity !== "string" && typeof quantity !== "number") {
        throw invalid(
          `spec.template.resources.${kind}.${resource}`,
          "must be a quantity string such as 500m or 1Gi",
        );
      }
      list[resource] = String(quantity);
    }
    out[kind] = list;
  }
  return out;
}

/** Reads template.driver_config.kubernetes.pod.{node_selector, tolerations}. */
function schedulingFrom(struct: JsonObject | undefined): {
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
} {
  if (!struct || Object.keys(struct).length === 0) return {};
  const keys = Object.keys(struct);
  if (keys.some((k) => k !== "kubernetes")) {
    throw invalid(
      "spec.template.driver_config",
      `only the "kubernetes" block applies to this gateway (got ${keys.map((k) => keyInField(k)).join(", ")})`,
    );
  }
  const k8s = struct.kubernetes as JsonObject | undefined;
  const other = Object.keys(k8s ?? {}).filter((k) => k !== "pod");
  if (other.length) throw unsupported(`spec.template.driver_config.kubernetes.${keyInField(other[0]!)}`);
  const pod = (k8s?.pod ?? {}) as JsonObject;
  const out: { nodeSelector?: Record<string, string>; tolerations?: Toleration[] } = {};
  for (const [key, value] of Object.entries(pod)) {
    if (key === "node_selector") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw invalid("spec.template.driver_config.kubernetes.pod.node_selector", "must be a map of strings");
      }
      out.nodeSelector = Object.fromEntries(
        Object.entries(value).map(([k, v]) => {
          if (typeof v !== "string") {
            throw invalid(
              `spec.template.driver_config.kubernetes.pod.node_selector.${keyInField(k)}`,
              "must be a string",
            );
          }
          return [k, v];
        }),
      );
    } else if (key === "tolerations") {
      if (!Array.isArray(value))
        throw invalid("spec.template.driver_config.kubernetes.pod.tolerations", "must be a list");
      out.tolerations = value.map((t, i) => tolerationFrom(t, i));
    } else {
      throw unsupported(`spec.template.driver_config.kubernetes.pod.${keyInField(key)}`);
    }
  }
  return out;
}

const TOLERATION_STRINGS = ["key", "operator", "value", "effect"] as const;

/** One toleration from JSON: the shape is checked here, the values by the request validation. */
function tolerationFrom(value: unknown, index: number): Toleration {
  const field = `spec.template.driver_config.kubernetes.pod.tolerations[${index}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(field, "must be an object with key, operator, value, effect and tolerationSeconds");
  }
  const entries = value as Record<string, unknown>;
  for (const key of Object.keys(entries)) {
    if (!(TOLERATION_STRINGS as readonly string[]).includes(key) && key !== "tolerationSeconds") {
      throw invalid(`${field}.${keyInField(key)}`, "is not a toleration field");
    }
  }
  for (const key of TOLERATION_STRINGS) {
    if (entries[key] !== undefined && typeof entries[key] !== "string") {
      throw invalid(`${field}.${key}`, "must be a string");
    }
  }
  const seconds = entries.tolerationSeconds;
  if (seconds !== undefined && (typeof seconds !== "number" || !Number.isSafeInteger(seconds))) {
    throw invalid(`${field}.tolerationSeconds`, "must be a whole number of seconds");
  }
  return entries;
}

/** Upstream's limit on spec.log_level (grpc/mod.rs); this gateway does not use the value. */
const MAX_LOG_LEVEL = 32;

/** Builds the gateway's create input from upstream's CreateSandboxRequest. */
export function createInputFrom(
  req: CreateSandboxRequest,
  imagePullSecrets: readonly string[] = [],
): CreateInput {
  if (req.workloadTemplate) throw unsupported("workload_template");
  if (req.serviceExposures.length) throw unsupported("service_exposures");
  if (req.awaitMainProcessAttachment) throw unsupported("await_main_process_attachment");
  const spec = req.spec;
  if (spec?.policy)
    throw unsupported(
      "spec.policy",
      "sandbox policies need the OpenShell supervisor, which this gateway does not run",
    );
  if (spec?.providers.length) throw unsupported("spec.providers");
  if (spec?.tty) throw unsupported("spec.tty");
  if (spec?.providerAttachmentEpoch) throw unsupported("spec.provider_attachment_epoch");
  if (
    spec &&
    spec.restartPolicy !== SandboxRestartPolicy.UNSPECIFIED &&
    spec.restartPolicy !== SandboxRestartPolicy.NEVER
  ) {
    throw unsupported(
      "spec.restart_policy",
      "sandboxes are never restarted by this gateway; use NEVER or leave it unset",
    );
  }
  if (spec && Buffer.byteLength(spec.logLevel) > MAX_LOG_LEVEL) {
    throw invalid("spec.log_level", `must be at most ${MAX_LOG_LEVEL} bytes`);
  }
  const template = spec?.template;
  if (template?.agentSocket) throw unsupported("spec.template.agent_socket");
  if (template?.userNamespaces) throw unsupported("spec.template.user_namespaces");
  const gpu = spec?.resourceRequirements?.gpu?.count;
  const resources = resourcesFrom(template?.resources);
  const scheduling = schedulingFrom(template?.driverConfig);
  const environment = { ...(template?.environment ?? {}), ...(spec?.environment ?? {}) };

  return {
    name: req.name,
    workspace: workspaceOf(req.workspaceScope),
    labels: { ...req.labels },
    ...(Object.keys(req.annotations).length ? { metadataAnnotations: { ...req.annotations } } : {}),
    ...(template?.image ? { image: template.image } : {}),
    ...(Object.keys(environment).length ? { environment } : {}),
    ...(spec?.command.length ? { command: [...spec.command] } : {}),
    ...(template && Object.keys(template.labels).length ? { templateLabels: { ...template.labels } } : {}),
    ...(template && Object.keys(template.annotations).length
      ? { annotations: { ...template.annotations } }
      : {}),
    ...(resources ? { resources } : {}),
    ...(gpu !== undefined && gpu > 0 ? { gpu } : {}),
    ...(template?.runtimeClassName ? { runtimeClassName: template.runtimeClassName } : {}),
    ...scheduling,
    ...(imagePullSecrets.length ? { imagePullSecrets: [...imagePullSecrets] } : {}),
  };
}

/** Parses upstream's label selector "k=v,k2=v2" (equality only). */
export function parseLabelSelector(selector: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of selector
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([^=!]+)==?(.*)$/.exec(part);
    if (!match)
      throw invalid(
        "label_selector",
        `${describeValue(part)} must be key=value (only equality is supported)`,
      );
    out[match[1]!.trim()] = match[2]!.trim();
  }
  return out;
}

const PHASES: Record<Phase, SandboxPhase> = {
  PROVISIONING: SandboxPhase.PROVISIONING,
  READY: SandboxPhase.READY,
  ERROR: SandboxPhase.ERROR,
  DELETING: SandboxPhase.DELETING,
  UNKNOWN: SandboxPhase.UNKNOWN,
  STOPPING: SandboxPhase.STOPPING,
  STOPPED: SandboxPhase.STOPPED,
  STARTING: SandboxPhase.STARTING,
  COMPLETED: SandboxPhase.COMPLETED,
};

/** The stored spec in upstream's shape (what the client asked for, with the default image filled in). */
function specMessage(spec: StoredSpec) {
  const resources: JsonObject = {};
  if (spec.resources?.requests) resources.requests = { ...spec.resources.requests };
  if (spec.resources?.limits) resources.limits = { ...spec.resources.limits };
  const pod: JsonObject = {};
  if (spec.nodeSelector && Object.keys(spec.nodeSelector).length)
    pod.node_selector = { ...spec.nodeSelector };
  if (spec.tolerations?.length) pod.tolerations = spec.tolerations.map((t) => ({ ...t }));
  return {
    environment: { ...(spec.environment ?? {}) },
    command: [...(spec.command ?? [])],
    template: {
      image: spec.image ?? "",
      labels: { ...(spec.labels ?? {}) },
      annotations: { ...(spec.annotations ?? {}) },
      runtimeClassName: spec.runtimeClassName ?? "",
      ...(Object.keys(resources).length ? { resources } : {}),
      ...(Object.keys(pod).length ? { driverConfig: { kubernetes: { pod } } } : {}),
    },
    ...(spec.gpu ? { resourceRequirements: { gpu: { count: spec.gpu } } } : {}),
  };
}

export function sandboxMessage(view: SandboxView): Sandbox {
  const { record, observed } = view;
  const spec = record.spec as StoredSpec;
  const conditions = (observed?.conditions ?? []).map((c) =>
    create(SandboxConditionSchema, {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      ...(c.transitionTimeMs !== undefined ? { transitionTime: timestampFromMs(c.transitionTimeMs) } : {}),
    }),
  );
  if (record.failure) {
    conditions.push(
      create(SandboxConditionSchema, {
        type: "Ready",
        status: "False",
        reason: record.failure.reason,
        message: `${record.failure.message}; fix: ${fixFor(record.failure.reason as PullFailureReason)}`,
        transitionTime: timestampFromMs(record.failure.observedAtMs),
      }),
    );
  }
  return create(SandboxSchema, {
    spec: specMessage(spec),
    metadata: create(ObjectMetaSchema, {
      id: record.id,
      name: record.name,
      workspace: record.workspace,
      labels: { ...record.labels },
      annotations: { ...(spec.metadataAnnotations ?? {}) },
      resourceVersion: BigInt(record.version),
      createdTime: timestampFromMs(record.createdAtMs),
    }),
    status: create(SandboxStatusSchema, {
      phase: PHASES[view.phase],
      agentPod: observed?.podName ?? "",
      conditions,
      restartCount: observed?.restartCount ?? 0,
      ...(observed?.exitCode !== undefined ? { exitCode: observed.exitCode } : {}),
      ...(observed?.startedAtMs !== undefined
        ? { mainProcessStartedTime: timestampFromMs(observed.startedAtMs) }
        : {}),
    }),
  });
}

export function platformEventMessage(event: PlatformEvent): PlatformEventMessage {
  return create(PlatformEventSchema, {
    source: "kubernetes",
    type: event.type,
    reason: event.reason,
    message: event.message,
    metadata: { ...event.metadata },
    eventTime: timestampFromMs(event.timeMs),
  });
}

export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set(["READY", "ERROR", "COMPLETED", "STOPPED"]);
