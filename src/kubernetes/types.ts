// What the gateway needs from Kubernetes, independent of the resource kind (Sandbox CR or Pod).

import type { RenderedObject, RenderTarget } from "../render/sandbox.js";

/** Upstream's sandbox phases (openshell.v1.SandboxPhase without the prefix). */
export type Phase =
  | "PROVISIONING"
  | "READY"
  | "ERROR"
  | "DELETING"
  | "UNKNOWN"
  | "STOPPING"
  | "STOPPED"
  | "STARTING"
  | "COMPLETED";

export interface Condition {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly transitionTimeMs: number | undefined;
}

/** A Kubernetes event about the sandbox or its pod, as upstream's PlatformEvent carries it. */
export interface PlatformEvent {
  readonly timeMs: number;
  /** Normal or Warning. */
  readonly type: string;
  /** Scheduled, Pulling, Pulled, Created, Started, Failed, BackOff, FailedToRetrieveImagePullSecret, … */
  readonly reason: string;
  readonly message: string;
  /** involved_kind, involved_name, namespace, count, and for pulls: image, size. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A container that is waiting, with the kubelet's reason (ErrImagePull, ImagePullBackOff, …) and message. */
export interface WaitingContainer {
  readonly container: string;
  readonly init: boolean;
  readonly image: string;
  readonly reason: string;
  readonly message: string;
}

/** Everything the gateway knows about one sandbox's Kubernetes side, from the reflector's caches. */
export interface ObservedSandbox {
  readonly sandboxId: string;
  readonly objectName: string;
  readonly phase: Phase;
  readonly conditions: readonly Condition[];
  readonly podName: string | undefined;
  /** Containers currently waiting (pull problems live here). */
  readonly waiting: readonly WaitingContainer[];
  /** The agent container's exit code once it terminated. */
  readonly exitCode: number | undefined;
  readonly restartCount: number;
  readonly startedAtMs: number | undefined;
  /** The object's creationTimestamp (absent only where a test driver leaves it out). */
  readonly createdAtMs?: number | undefined;
  /** The object's deletionTimestamp is set. */
  readonly deleting: boolean;
  readonly resourceVersion: string;
}

export type DriverEvent =
  | { readonly type: "changed"; readonly sandbox: ObservedSandbox }
  | { readonly type: "deleted"; readonly sandboxId: string; readonly objectName: string }
  | { readonly type: "event"; readonly sandboxId: string; readonly event: PlatformEvent };

export type ExecChunk =
  | { readonly type: "stdout"; readonly data: Uint8Array }
  | { readonly type: "stderr"; readonly data: Uint8Array }
  | { readonly type: "exit"; readonly code: number };

export interface ExecOptions {
  readonly command: readonly string[];
  readonly stdin?: Uint8Array;
  readonly workdir?: string;
  readonly environment?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** A Kubernetes API failure mapped for the RPC layer; the message never contains secret data. */
export class KubernetesError extends Error {
  constructor(
    message: string,
    readonly kind:
      "AlreadyExists" | "NotFound" | "Invalid" | "Forbidden" | "Unavailable" | "Timeout" | "Internal",
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

export interface SandboxDriver {
  /** Resolves `auto` (resource kind and agent-sandbox version) by discovery; cached. */
  target(): Promise<RenderTarget>;
  /** Starts the reflectors (list, then watch) and resolves once the first lists are synced. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True while the API server answered recently (for /readyz). */
  apiReachable(): boolean;
  /** Subscribes to changes of managed objects, their pods and their events. Returns an unsubscribe function. */
  subscribe(listener: (event: DriverEvent) => void): () => void;
  /** From the cache; undefined when no managed object has that name. */
  observed(objectName: string): ObservedSandbox | undefined;
  /** Every managed object in the cache (for reconcile). */
  observedAll(): ObservedSandbox[];
  /** Recent platform events for a sandbox, oldest first (bounded). */
  events(sandboxId: string): readonly PlatformEvent[];
  /** A service account's imagePullSecrets names (cached; empty when it lists none or does not exist). */
  serviceAccountPullSecrets(name: string): Promise<string[]>;
  /** Creates the rendered object; KubernetesError AlreadyExists on 409. */
  create(object: RenderedObject): Promise<void>;
  /** Deletes the object (foreground for pods' sake); false when it was already gone. */
  delete(objectName: string): Promise<boolean>;
  /** Stops the sandbox: v1beta1 operatingMode Suspended, v1alpha1 replicas 0, pod mode deletes the pod. */
  stopSandbox(objectName: string): Promise<void>;
  /** Starts it again: v1beta1 Running, v1alpha1 replicas 1, pod mode re-creates the given pod. */
  startSandbox(objectName: string, object: RenderedObject): Promise<void>;
  /** The agent container's log through pods/log (last tailLines lines, 0 for all; at most limitBytes). */
  logs(objectName: string, options: { tailLines: number; limitBytes: number }): Promise<string>;
  /** Runs a command in the agent container through pods/exec; yields stdout/stderr and ends with exit. */
  exec(objectName: string, options: ExecOptions): AsyncIterable<ExecChunk>;
}
