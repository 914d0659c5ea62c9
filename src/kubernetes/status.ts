// Pure mapping from what Kubernetes reports (a Sandbox custom resource and/or its pod, core/v1 Events)
// to what the gateway reports (ObservedSandbox, PlatformEvent). No I/O, no clock: everything here is
// decided from the objects alone, so it is tested on real objects captured from a cluster.
//
// The phase follows upstream's derive_phase (crates/openshell-server compute/mod.rs) and adds what
// upstream lacks: stop/start (agent-sandbox operatingMode / replicas), terminal pods, and plain pods.
// Image pull failures deliberately stay PROVISIONING here: the kubelet retries pulls, and only the
// gateway knows how long it has waited (it owns the grace period and the ERROR decision).

import { LABELS } from "../render/sandbox.js";
import type { Condition, ObservedSandbox, Phase, PlatformEvent, WaitingContainer } from "./types.js";
import type {
  ContainerStatusRaw,
  EventResource,
  PodResource,
  RawCondition,
  SandboxResource,
} from "./objects.js";
import type { KubeObject } from "./reflector.js";

export const AGENT_CONTAINER_NAME = "agent";

/** Ready=False reasons that mean "not yet" rather than "failed" (upstream's list, compared case-insensitively). */
export const TRANSIENT_READY_REASONS: ReadonlySet<string> = new Set(
  [
    "ReconcilerError",
    "DependenciesNotReady",
    "Starting",
    "ContainerStarting",
    "HealthcheckStarting",
    "InspectFailed",
  ].map((r) => r.toLowerCase()),
);

/** agent-sandbox's Ready=False reason while the Sandbox is suspended (operatingMode Suspended / replicas 0). */
export const REASON_SANDBOX_SUSPENDED = "SandboxSuspended";
export const REASON_POD_SUCCEEDED = "PodSucceeded";
export const REASON_POD_FAILED = "PodFailed";

/** Milliseconds since the epoch of an RFC 3339 string (or Date); undefined when absent or unparseable. */
export function toMs(value: string | Date | null | undefined): number | undefined {
  if (value === null || value === undefined || value === "") return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The sandbox id from the managed label, falling back to upstream's `sandbox-<id>` name prefix. */
export function sandboxIdOf(obj: KubeObject): string {
  const label = obj.metadata?.labels?.[LABELS.sandboxId];
  if (label) return label;
  const name = obj.metadata?.name ?? "";
  return name.startsWith("sandbox-") ? name.slice("sandbox-".length) : "";
}

/** Conditions as the API reports them; entries without a type or a status are skipped (as upstream). */
export function mapConditions(raw: readonly RawCondition[] | undefined): Condition[] {
  const out: Condition[] = [];
  for (const c of raw ?? []) {
    if (!c.type || !c.status) continue;
    out.push({
      type: c.type,
      status: c.status === "True" || c.status === "False" ? c.status : "Unknown",
      reason: c.reason ?? "",
      message: c.message ?? "",
      transitionTimeMs: toMs(c.lastTransitionTime),
    });
  }
  return out;
}

function findCondition(raw: readonly RawCondition[] | undefined, type: string): RawCondition | undefined {
  return raw?.find((c) => c.type === type);
}

/** Every waiting container and init container with its reason (pull failures live here). */
export function waitingContainers(pod: PodResource | undefined): WaitingContainer[] {
  if (!pod) return [];
  const specImage = (name: string, init: boolean) =>
    (init ? pod.spec?.initContainers : pod.spec?.containers)?.find((c) => c.name === name)?.image ?? "";
  const collect = (statuses: readonly ContainerStatusRaw[] | undefined, init: boolean): WaitingContainer[] =>
    (statuses ?? [])
      .filter((s) => s.state?.waiting)
      .map((s) => ({
        container: s.name,
        init,
        // The spec's image is what was asked for; the status may show a resolved or normalised name.
        image: specImage(s.name, init) || s.image || "",
        reason: s.state?.waiting?.reason ?? "",
        message: s.state?.waiting?.message ?? "",
      }));
  return [
    ...collect(pod.status?.initContainerStatuses, true),
    ...collect(pod.status?.containerStatuses, false),
  ];
}

function agentStatus(pod: PodResource | undefined): ContainerStatusRaw | undefined {
  const statuses = pod?.status?.containerStatuses ?? [];
  return statuses.find((s) => s.name === AGENT_CONTAINER_NAME) ?? statuses[0];
}

/** True when the Sandbox asks to be stopped: v1beta1 operatingMode Suspended, v1alpha1 replicas 0. */
export function isSuspendRequested(sandbox: SandboxResource): boolean {
  return sandbox.spec?.operatingMode === "Suspended" || sandbox.spec?.replicas === 0;
}

/** The phase of a plain pod (pod mode), or of a Sandbox's pod when the Sandbox leaves it open. */
export function derivePodPhase(pod: PodResource): Phase {
  if (pod.metadata?.deletionTimestamp) return "DELETING";
  switch (pod.status?.phase) {
    case "Pending":
      return "PROVISIONING";
    case "Running":
      return findCondition(pod.status.conditions, "Ready")?.status === "True" ? "READY" : "PROVISIONING";
    case "Succeeded":
      return "COMPLETED";
    case "Failed":
      return "ERROR";
    case undefined:
      // Just created: the API server has not filled in a status yet.
      return "PROVISIONING";
    default:
      return "UNKNOWN";
  }
}

/**
 * The phase of an agent-sandbox Sandbox, given its pod when one exists.
 *
 * Upstream's rules (deleting → DELETING; Ready True → READY; Ready False with a transient reason →
 * PROVISIONING, other False → ERROR; no Ready → PROVISIONING; no status → UNKNOWN), preceded by:
 * a requested suspend is STOPPING while the pod exists and STOPPED once it is gone; a resume the
 * controller has not acted on yet is STARTING; a terminated pod is COMPLETED or ERROR.
 */
export function deriveSandboxPhase(sandbox: SandboxResource, pod: PodResource | undefined): Phase {
  if (sandbox.metadata?.deletionTimestamp) return "DELETING";
  const ready = findCondition(sandbox.status?.conditions, "Ready");
  if (isSuspendRequested(sandbox)) return pod ? "STOPPING" : "STOPPED";
  if (ready?.status === "False" && ready.reason === REASON_SANDBOX_SUSPENDED) return "STARTING";
  if (
    pod?.status?.phase === "Succeeded" ||
    (ready?.status === "False" && ready.reason === REASON_POD_SUCCEEDED)
  )
    return "COMPLETED";
  if (pod?.status?.phase === "Failed" || (ready?.status === "False" && ready.reason === REASON_POD_FAILED))
    return "ERROR";
  if (!sandbox.status || Object.keys(sandbox.status).length === 0)
    return pod ? derivePodPhase(pod) : "UNKNOWN";
  if (!ready) return "PROVISIONING";
  if (ready.status === "True") return "READY";
  if (ready.status === "False")
    return TRANSIENT_READY_REASONS.has((ready.reason ?? "").toLowerCase()) ? "PROVISIONING" : "ERROR";
  return "PROVISIONING";
}

function podFacts(pod: PodResource | undefined) {
  const agent = agentStatus(pod);
  const terminated = agent?.state?.terminated;
  return {
    podName: pod?.metadata?.name,
    waiting: waitingContainers(pod),
    exitCode: terminated?.exitCode,
    restartCount: agent?.restartCount ?? 0,
    startedAtMs: toMs(agent?.state?.running?.startedAt ?? terminated?.startedAt),
  };
}

/** What the gateway sees of a Sandbox custom resource and its pod (undefined when there is none). */
export function observeSandbox(sandbox: SandboxResource, pod: PodResource | undefined): ObservedSandbox {
  return {
    sandboxId: sandboxIdOf(sandbox),
    objectName: sandbox.metadata?.name ?? "",
    phase: deriveSandboxPhase(sandbox, pod),
    conditions: mapConditions(sandbox.status?.conditions),
    ...podFacts(pod),
    createdAtMs: toMs(sandbox.metadata?.creationTimestamp),
    deleting: Boolean(sandbox.metadata?.deletionTimestamp),
    resourceVersion: sandbox.metadata?.resourceVersion ?? "",
  };
}

/** What the gateway sees of a sandbox that is a plain pod (pod mode). */
export function observePod(pod: PodResource): ObservedSandbox {
  return {
    sandboxId: sandboxIdOf(pod),
    objectName: pod.metadata?.name ?? "",
    phase: derivePodPhase(pod),
    conditions: mapConditions(pod.status?.conditions),
    ...podFacts(pod),
    createdAtMs: toMs(pod.metadata?.creationTimestamp),
    deleting: Boolean(pod.metadata?.deletionTimestamp),
    resourceVersion: pod.metadata?.resourceVersion ?? "",
  };
}

// The kubelet's image event texts (pkg/kubelet/images/image_manager.go). Sizes appear in newer
// kubelets: `Successfully pulled image "x" in 1.2s (1.2s including waiting). Image size: 1234 bytes.`
const IMAGE_IN_QUOTES = /image "([^"]+)"/;
const IMAGE_SIZE = /Image size: (\d+) bytes/;
const ALREADY_PRESENT = /^Container image "[^"]+" already present on machine/;
const PULL_DURATION = /Successfully pulled image "[^"]+" in ([0-9.]+m?s|[0-9hms.]+)/;
const IMAGE_REASONS: ReadonlySet<string> = new Set([
  "Pulling",
  "Pulled",
  "Failed",
  "BackOff",
  "ErrImageNeverPull",
  "InspectFailed",
]);

/** The event's most recent occurrence: series, lastTimestamp, eventTime, firstTimestamp, creation. */
export function eventTimeMs(ev: EventResource): number {
  return (
    toMs(ev.series?.lastObservedTime) ??
    toMs(ev.lastTimestamp) ??
    toMs(ev.eventTime) ??
    toMs(ev.firstTimestamp) ??
    toMs(ev.metadata?.creationTimestamp) ??
    0
  );
}

/** A core/v1 Event as upstream's PlatformEvent, with the pulled image and its size when stated. */
export function toPlatformEvent(ev: EventResource): PlatformEvent {
  const message = ev.message ?? "";
  const reason = ev.reason ?? "";
  const metadata: Record<string, string> = {
    involved_kind: ev.involvedObject?.kind ?? "",
    involved_name: ev.involvedObject?.name ?? "",
    namespace: ev.involvedObject?.namespace ?? ev.metadata?.namespace ?? "",
    count: String(ev.series?.count ?? ev.count ?? 1),
  };
  if (IMAGE_REASONS.has(reason) || message.startsWith("Container image ")) {
    const image = IMAGE_IN_QUOTES.exec(message)?.[1];
    if (image) metadata.image = image;
    const size = IMAGE_SIZE.exec(message)?.[1];
    if (size) metadata.size = size;
    const duration = PULL_DURATION.exec(message)?.[1];
    if (duration) metadata.pull_duration = duration;
    // IfNotPresent with a cached image: no registry round trip happened (credentials were not checked).
    if (ALREADY_PRESENT.test(message)) metadata.already_present = "true";
  }
  return { timeMs: eventTimeMs(ev), type: ev.type ?? "Normal", reason, message, metadata };
}
