// KubernetesDriver: the gateway's SandboxDriver on a real cluster. Reads come from reflector caches
// (never from the API per request); writes go through KubeClient with a timeout; exec goes through
// pods/exec. One namespace, the configured one.
//
// RBAC the gateway's Role needs in that namespace (driver.test.ts runs the driver with exactly this
// Role in agent-sandbox mode; dropping either pods/exec verb was tried and breaks exec):
//   agents.x-k8s.io sandboxes: list watch create delete patch
//   pods: list watch (pod mode adds create delete)
//   pods/exec: get create (Kubernetes 1.35 checks both on the WebSocket upgrade)
//   events: list watch
//   serviceaccounts: list watch, only with merge_service_account_pull_secrets (resourceNames: the sandbox SA)
// Discovery of /apis/agents.x-k8s.io is allowed to every authenticated user (system:discovery).

import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";

import type { GatewayConfig } from "../config/settings.js";
import {
  AGENT_CONTAINER,
  AGENT_SANDBOX_GROUP,
  LABELS,
  MANAGED_BY,
  type RenderedObject,
  type RenderTarget,
} from "../render/sandbox.js";
import { KubeClient, KubeMetrics, loadKubeConfig } from "./client.js";
import { chooseTarget, SANDBOX_PLURAL, servedSandboxVersions } from "./discovery.js";
import { execInPod } from "./exec.js";
import type { EventResource, PodResource, SandboxResource, ServiceAccountResource } from "./objects.js";
import {
  Reflector,
  type CacheChange,
  type KubeObject,
  type ReflectorLogger,
  type WatchLike,
} from "./reflector.js";
import { DEFAULT_EVENT_LIMITS, EventStore } from "./event-store.js";
import { observePod, observeSandbox, sandboxIdOf } from "./status.js";
import {
  KubernetesError,
  type DriverEvent,
  type ExecChunk,
  type ExecOptions,
  type ObservedSandbox,
  type PlatformEvent,
  type SandboxDriver,
} from "./types.js";

export const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;
/** Field manager recorded on everything the gateway creates or patches. */
export const FIELD_MANAGER = "openshell-gateway";
/** The annotation agent-sandbox sets when a Sandbox adopted a pod with another name (warm pools). */
const POD_NAME_ANNOTATION = "agents.x-k8s.io/pod-name";
const EVENT_KINDS: ReadonlySet<string> = new Set(["Sandbox", "Pod"]);

export interface KubernetesDriverOptions {
  readonly config: Pick<
    GatewayConfig,
    | "kubeconfig"
    | "namespace"
    | "sandboxResource"
    | "sandboxApiVersion"
    | "mergeServiceAccountPullSecrets"
    | "serviceAccountName"
  >;
  /** Overrides config.kubeconfig (tests). */
  readonly kubeConfig?: KubeConfig;
  /** Where the Kubernetes metrics are registered; none when absent. */
  readonly registry?: Registry;
  /** Shares metrics between drivers (tests create several on one registry). */
  readonly metrics?: KubeMetrics;
  readonly logger?: ReflectorLogger;
  readonly apiTimeoutMs?: number;
  /** Restart a watch silent for this long (default 150 s; bookmarks come about once a minute). */
  readonly watchdogMs?: number;
  readonly watchTimeoutSeconds?: number;
  /** How long start() waits for the first lists (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Platform events kept per sandbox (default 64). */
  readonly eventsPerSandbox?: number;
  /** apiReachable() stays true this long after the last success, across watch restarts (default 60 s). */
  readonly reachableGraceMs?: number;
  /** Tests: a stubbed Watch. */
  readonly watch?: WatchLike;
}

type AnyReflector = Reflector<KubeObject>;

export class KubernetesDriver implements SandboxDriver {
  readonly client: KubeClient;
  readonly kc: KubeConfig;
  private readonly namespace: string;
  private readonly watch: WatchLike;
  private targetPromise: Promise<RenderTarget> | undefined;
  private resolvedTarget: RenderTarget | undefined;
  private sandboxes: Reflector<SandboxResource> | undefined;
  private pods: Reflector<PodResource> | undefined;
  private eventsReflector: Reflector<EventResource> | undefined;
  private serviceAccounts: Reflector<ServiceAccountResource> | undefined;
  private readonly listeners = new Set<(event: DriverEvent) => void>();
  private readonly eventStore: EventStore;
  /** The last `changed` payload per object name, to drop updates that change nothing we report. */
  private readonly lastEmitted = new Map<string, string>();
  private started: Promise<void> | undefined;

  constructor(private readonly options: KubernetesDriverOptions) {
    this.kc = options.kubeConfig ?? loadKubeConfig(options.config.kubeconfig);
    const metrics = options.metrics ?? (options.registry ? KubeMetrics.on(options.registry) : undefined);
    this.client = new KubeClient(this.kc, metrics, { timeoutMs: options.apiTimeoutMs });
    this.namespace = options.config.namespace;
    this.watch = options.watch ?? new Watch(this.kc);
    this.eventStore = new EventStore({
      ...DEFAULT_EVENT_LIMITS,
      perSandbox: options.eventsPerSandbox ?? DEFAULT_EVENT_LIMITS.perSandbox,
    });
  }

  // ---- target ----

  target(): Promise<RenderTarget> {
    if (!this.targetPromise) {
      const { sandboxResource, sandboxApiVersion } = this.options.config;
      this.targetPromise = (
        sandboxResource === "pod" ? Promise.resolve([]) : servedSandboxVersions(this.client)
      ).then((served) => {
        const target = chooseTarget(sandboxResource, sandboxApiVersion, served);
        this.resolvedTarget = target;
        return target;
      });
      // A failed discovery (API down) is retried by the next call; a decided target is kept.
      this.targetPromise.catch(() => (this.targetPromise = undefined));
    }
    return this.targetPromise;
  }

  private requireTarget(): RenderTarget {
    if (!this.resolvedTarget)
      throw new KubernetesError("the Kubernetes driver is not started", "Unavailable");
    return this.resolvedTarget;
  }

  private sandboxPath(apiVersion: string): string {
    return `/apis/${apiVersion}/namespaces/${this.namespace}/${SANDBOX_PLURAL}`;
  }

  private get podsPath(): string {
    return `/api/v1/namespaces/${this.namespace}/pods`;
  }

  // ---- lifecycle ----

  start(): Promise<void> {
    // A failed start (API unreachable) may be retried; a successful one is kept.
    this.started ??= this.doStart().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  private async doStart(): Promise<void> {
    const target = await this.target();
    const common = {
      watch: this.watch,
      metrics: this.client.metrics,
      logger: this.options.logger,
      watchdogMs: this.options.watchdogMs,
      watchTimeoutSeconds: this.options.watchTimeoutSeconds,
    };
    const list =
      <T>(resource: string, path: string) =>
      (query: Record<string, string | number | undefined>) =>
        this.client.request<{ items: T[]; metadata?: { resourceVersion?: string; continue?: string } }>({
          verb: "list",
          resource,
          path,
          query,
          namespace: this.namespace,
        });
    if (target.resource === "agent-sandbox") {
      const path = this.sandboxPath(`${AGENT_SANDBOX_GROUP}/${target.apiVersion}`);
      const resource = `${SANDBOX_PLURAL}.${target.apiVersion}`;
      this.sandboxes = new Reflector<SandboxResource>({
        ...common,
        resource,
        path,
        labelSelector: MANAGED_SELECTOR,
        list: list(resource, path),
        onChange: (c) => this.onSandboxChange(c),
      });
    }
    this.pods = new Reflector<PodResource>({
      ...common,
      resource: "pods",
      path: this.podsPath,
      labelSelector: MANAGED_SELECTOR,
      list: list("pods", this.podsPath),
      onChange: (c) => this.onPodChange(c),
    });
    const saPath = `/api/v1/namespaces/${this.namespace}/serviceaccounts`;
    // Only the sandbox service account, and only when its pull secrets are merged: a field selector on
    // the name lets RBAC grant exactly that one (resourceNames), nothing else in the namespace.
    const { mergeServiceAccountPullSecrets, serviceAccountName } = this.options.config;
    this.serviceAccounts = !mergeServiceAccountPullSecrets
      ? undefined
      : new Reflector<ServiceAccountResource>({
          ...common,
          resource: "serviceaccounts",
          path: saPath,
          fieldSelector: `metadata.name=${serviceAccountName}`,
          list: list("serviceaccounts", saPath),
          // Only the pull secrets matter; the rest (token secrets, labels) is dropped to keep the cache small.
          transform: (sa) => ({ metadata: sa.metadata, imagePullSecrets: sa.imagePullSecrets }),
          onChange: () => undefined,
        });
    const eventsPath = `/api/v1/namespaces/${this.namespace}/events`;
    this.eventsReflector = new Reflector<EventResource>({
      ...common,
      resource: "events",
      path: eventsPath,
      list: list("events", eventsPath),
      filter: (ev) => EVENT_KINDS.has(ev.involvedObject?.kind ?? ""),
      onChange: (c) => this.onEventChange(c),
    });

    const primaries = [this.sandboxes, this.pods, this.serviceAccounts].filter(
      (r): r is NonNullable<typeof r> => r !== undefined,
    ) as AnyReflector[];
    // Events are mapped to sandboxes through the other caches, so they start once those are synced.
    for (const r of primaries) r.start();
    try {
      await this.withStartTimeout(Promise.all(primaries.map((r) => r.synced)), primaries);
      this.eventsReflector.start();
      await this.withStartTimeout(this.eventsReflector.synced, [this.eventsReflector]);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async withStartTimeout(p: Promise<unknown>, reflectors: AnyReflector[]): Promise<void> {
    const ms = this.options.startTimeoutMs ?? 60_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const pending = reflectors.filter((r) => !r.isSynced);
        const detail = pending.map((r) => `${r.resource}: ${r.lastError || "no answer"}`).join("; ");
        reject(
          new KubernetesError(
            `timed out after ${ms / 1000}s waiting for the first list from the Kubernetes API (${detail})`,
            "Timeout",
          ),
        );
      }, ms);
    });
    try {
      await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    const all = [this.sandboxes, this.pods, this.serviceAccounts, this.eventsReflector].filter(
      (r): r is NonNullable<typeof r> => r !== undefined,
    ) as AnyReflector[];
    await Promise.all(all.map((r) => r.stop()));
  }

  apiReachable(): boolean {
    const all = [this.sandboxes, this.pods, this.serviceAccounts, this.eventsReflector].filter(
      (r): r is NonNullable<typeof r> => r !== undefined,
    ) as AnyReflector[];
    if (all.length === 0) return false;
    const grace = this.options.reachableGraceMs ?? 60_000;
    const now = Date.now();
    // A watch that is being restarted is not an outage; only errors that last longer than the grace are.
    return all.every((r) => r.isSynced && (r.isConnected || now - r.lastSuccessAtMs < grace));
  }

  // ---- observation ----

  subscribe(listener: (event: DriverEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: DriverEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger?.warn({ err }, "driver event listener threw");
      }
    }
  }

  private key(name: string): string {
    return `${this.namespace}/${name}`;
  }

  /** The pod of a Sandbox: named like it (or as its pod-name annotation says) and not owned by another. */
  private podForSandbox(sandbox: SandboxResource): PodResource | undefined {
    const name = sandbox.metadata?.annotations?.[POD_NAME_ANNOTATION] ?? sandbox.metadata?.name ?? "";
    const pod = this.pods?.get(this.key(name));
    if (!pod) return undefined;
    const owner = (
      pod.metadata as { ownerReferences?: { kind?: string; uid?: string }[] } | undefined
    )?.ownerReferences?.find((o) => o.kind === "Sandbox");
    if (owner && sandbox.metadata?.uid && owner.uid !== sandbox.metadata.uid) return undefined;
    return pod;
  }

  /** The Sandbox a pod belongs to: its owner, else the Sandbox of the same name. */
  private sandboxForPod(pod: PodResource): SandboxResource | undefined {
    const owner = (
      pod.metadata as { ownerReferences?: { kind?: string; name?: string }[] } | undefined
    )?.ownerReferences?.find((o) => o.kind === "Sandbox");
    return this.sandboxes?.get(this.key(owner?.name ?? pod.metadata?.name ?? ""));
  }

  observed(objectName: string): ObservedSandbox | undefined {
    if (!this.resolvedTarget) return undefined;
    if (this.resolvedTarget.resource === "pod") {
      const pod = this.pods?.get(this.key(objectName));
      return pod ? observePod(pod) : undefined;
    }
    const sandbox = this.sandboxes?.get(this.key(objectName));
    return sandbox ? observeSandbox(sandbox, this.podForSandbox(sandbox)) : undefined;
  }

  observedAll(): ObservedSandbox[] {
    if (!this.resolvedTarget) return [];
    if (this.resolvedTarget.resource === "pod") return (this.pods?.list() ?? []).map(observePod);
    return (this.sandboxes?.list() ?? []).map((s) => observeSandbox(s, this.podForSandbox(s)));
  }

  events(sandboxId: string): readonly PlatformEvent[] {
    return this.eventStore.list(sandboxId);
  }

  async serviceAccountPullSecrets(name: string): Promise<string[]> {
    // Without merging there is no cache, and no caller: the gateway only asks when merging is on.
    if (!this.serviceAccounts) return [];
    await this.serviceAccounts.synced;
    const sa = this.serviceAccounts.get(this.key(name));
    return (sa?.imagePullSecrets ?? []).map((r) => r.name ?? "").filter((n) => n !== "");
  }

  private emitChanged(observed: ObservedSandbox): void {
    const { resourceVersion: _rv, ...rest } = observed;
    const fingerprint = JSON.stringify(rest);
    if (this.lastEmitted.get(observed.objectName) === fingerprint) return;
    this.lastEmitted.set(observed.objectName, fingerprint);
    this.emit({ type: "changed", sandbox: observed });
  }

  private emitDeleted(obj: KubeObject): void {
    const objectName = obj.metadata?.name ?? "";
    const sandboxId = sandboxIdOf(obj);
    this.lastEmitted.delete(objectName);
    this.eventStore.forget(sandboxId);
    this.emit({ type: "deleted", sandboxId, objectName });
  }

  private onSandboxChange(change: CacheChange<SandboxResource>): void {
    if (change.type === "delete") this.emitDeleted(change.obj);
    else this.emitChanged(observeSandbox(change.obj, this.podForSandbox(change.obj)));
    if (change.type === "add") this.replayPendingEvents(change.obj);
  }

  /**
   * The events watch and the pods/sandboxes watches are separate streams, so an event can arrive
   * before the object it is about; such events are held and replayed when the object shows up.
   */
  private replayPendingEvents(obj: KubeObject): void {
    for (const ev of this.eventStore.takeHeld(obj.metadata?.name ?? ""))
      this.onEventChange({ type: "add", obj: ev });
  }

  private onPodChange(change: CacheChange<PodResource>): void {
    if (change.type === "add") this.replayPendingEvents(change.obj);
    if (this.resolvedTarget?.resource === "pod") {
      if (change.type === "delete") this.emitDeleted(change.obj);
      else this.emitChanged(observePod(change.obj));
      return;
    }
    // A pod change (or its removal, e.g. on stop) changes what its Sandbox reports.
    const sandbox = this.sandboxForPod(change.obj);
    if (sandbox) this.emitChanged(observeSandbox(sandbox, this.podForSandbox(sandbox)));
  }

  /** The sandbox id an event is about: Sandbox events by Sandbox name, Pod events by pod, then by name. */
  private sandboxIdForEvent(ev: EventResource): string | undefined {
    const name = ev.involvedObject?.name ?? "";
    if (ev.involvedObject?.kind === "Sandbox") {
      const sandbox = this.sandboxes?.get(this.key(name));
      return sandbox ? sandboxIdOf(sandbox) : undefined;
    }
    const pod = this.pods?.get(this.key(name));
    if (pod) return sandboxIdOf(pod) || undefined;
    const sandbox = this.sandboxes?.get(this.key(name));
    return sandbox ? sandboxIdOf(sandbox) : undefined;
  }

  private onEventChange(change: CacheChange<EventResource>): void {
    if (change.type === "delete") return; // Events expire (TTL); what we already reported stays.
    const ev = change.obj;
    const sandboxId = this.sandboxIdForEvent(ev);
    if (!sandboxId) {
      this.eventStore.hold(ev);
      return;
    }
    const event = this.eventStore.record(sandboxId, ev);
    if (event) this.emit({ type: "event", sandboxId, event });
  }

  // ---- writes ----

  private pathFor(object: RenderedObject): { path: string; resource: string } {
    const namespace = object.metadata?.namespace ?? this.namespace;
    if (namespace !== this.namespace)
      throw new KubernetesError(
        `object namespace ${namespace} differs from the driver's namespace ${this.namespace}`,
        "Invalid",
      );
    if (object.kind === "Pod") return { path: this.podsPath, resource: "pods" };
    if (!object.apiVersion?.startsWith(`${AGENT_SANDBOX_GROUP}/`))
      throw new KubernetesError(`cannot create ${object.apiVersion ?? "?"} ${object.kind ?? "?"}`, "Invalid");
    return {
      path: this.sandboxPath(object.apiVersion),
      resource: `${SANDBOX_PLURAL}.${AGENT_SANDBOX_GROUP}`,
    };
  }

  async create(object: RenderedObject): Promise<void> {
    const { path, resource } = this.pathFor(object);
    await this.client.request({
      verb: "create",
      resource,
      method: "POST",
      path,
      query: { fieldManager: FIELD_MANAGER },
      body: object,
      namespace: this.namespace,
      name: object.metadata?.name,
    });
  }

  /**
   * Deletes the object. Sandboxes are deleted with propagationPolicy Foreground: the Sandbox stays
   * (deletionTimestamp set, phase DELETING) until the garbage collector has removed its pod, service
   * and claims, so its disappearance (the `deleted` event) means the pod is gone too and the name can
   * be reused at once (the pod carries the Sandbox's name; with Background a quick re-create would meet
   * the old, still terminating pod). Pods have no dependents, so they use Background.
   */
  async delete(objectName: string): Promise<boolean> {
    const target = this.requireTarget();
    const isPod = target.resource === "pod";
    const path = isPod
      ? `${this.podsPath}/${objectName}`
      : `${this.sandboxPath(`${AGENT_SANDBOX_GROUP}/${target.apiVersion}`)}/${objectName}`;
    try {
      await this.client.request({
        verb: "delete",
        resource: isPod ? "pods" : `${SANDBOX_PLURAL}.${AGENT_SANDBOX_GROUP}`,
        method: "DELETE",
        path,
        body: {
          kind: "DeleteOptions",
          apiVersion: "v1",
          propagationPolicy: isPod ? "Background" : "Foreground",
        },
        namespace: this.namespace,
        name: objectName,
      });
      return true;
    } catch (err) {
      if (err instanceof KubernetesError && err.kind === "NotFound") return false;
      throw err;
    }
  }

  private async patchSandbox(objectName: string, spec: Record<string, unknown>): Promise<void> {
    const target = this.requireTarget();
    if (target.resource !== "agent-sandbox") throw new Error("patchSandbox in pod mode");
    await this.client.request({
      verb: "patch",
      resource: `${SANDBOX_PLURAL}.${AGENT_SANDBOX_GROUP}`,
      method: "PATCH",
      path: `${this.sandboxPath(`${AGENT_SANDBOX_GROUP}/${target.apiVersion}`)}/${objectName}`,
      query: { fieldManager: FIELD_MANAGER },
      contentType: "application/merge-patch+json",
      body: { spec },
      namespace: this.namespace,
      name: objectName,
    });
  }

  /**
   * Asks for the sandbox to stop and returns once the API accepted it; STOPPING then STOPPED arrive
   * through subscribe(). v1beta1: operatingMode Suspended; v1alpha1: replicas 0 (the controller
   * deletes the pod, keeps the Sandbox and its claims). Pod mode deletes the pod (a NotFound is fine):
   * the object then disappears, so the gateway reports STOPPED from its desired state.
   */
  async stopSandbox(objectName: string): Promise<void> {
    const target = this.requireTarget();
    if (target.resource === "pod") {
      await this.delete(objectName);
      return;
    }
    await this.patchSandbox(
      objectName,
      target.apiVersion === "v1beta1" ? { operatingMode: "Suspended" } : { replicas: 0 },
    );
  }

  /**
   * Starts a stopped sandbox: v1beta1 operatingMode Running, v1alpha1 replicas 1; pod mode creates
   * `object` again. A pod that still exists is fine when live, Unavailable while it is terminating.
   */
  async startSandbox(objectName: string, object: RenderedObject): Promise<void> {
    const target = this.requireTarget();
    if (target.resource === "agent-sandbox") {
      await this.patchSandbox(
        objectName,
        target.apiVersion === "v1beta1" ? { operatingMode: "Running" } : { replicas: 1 },
      );
      return;
    }
    try {
      await this.create(object);
    } catch (err) {
      if (!(err instanceof KubernetesError) || err.kind !== "AlreadyExists") throw err;
      const existing = this.pods?.get(this.key(objectName));
      if (existing?.metadata?.deletionTimestamp)
        throw new KubernetesError(
          `pod "${objectName}" is still terminating from the last stop; start it again shortly`,
          "Unavailable",
        );
    }
  }

  /** Errors (no such sandbox, not running, API failures) surface when the stream is iterated. */
  async *exec(objectName: string, options: ExecOptions): AsyncIterable<ExecChunk> {
    const pod = this.execPod(objectName);
    yield* execInPod(
      this.kc,
      { namespace: this.namespace, pod: pod.metadata?.name ?? objectName, container: AGENT_CONTAINER },
      options,
    );
  }

  /** The agent container's log (the last tailLines lines; 0 for all, bounded by limitBytes). */
  async logs(objectName: string, options: { tailLines: number; limitBytes: number }): Promise<string> {
    const pod = this.podOf(objectName);
    const name = pod.metadata?.name ?? objectName;
    return this.client.requestText({
      verb: "get",
      resource: "pods/log",
      path: `/api/v1/namespaces/${this.namespace}/pods/${name}/log`,
      query: {
        container: AGENT_CONTAINER,
        limitBytes: options.limitBytes,
        ...(options.tailLines > 0 ? { tailLines: options.tailLines } : {}),
      },
      namespace: this.namespace,
      name,
    });
  }

  private podOf(objectName: string): PodResource {
    const target = this.requireTarget();
    let pod: PodResource | undefined;
    if (target.resource === "pod") pod = this.pods?.get(this.key(objectName));
    else {
      const sandbox = this.sandboxes?.get(this.key(objectName));
      if (!sandbox) throw new KubernetesError(`sandbox "${objectName}" not found`, "NotFound");
      pod = this.podForSandbox(sandbox);
    }
    if (!pod) {
      throw new KubernetesError(
        `sandbox "${objectName}" has no pod (stopped or not scheduled yet)`,
        "Unavailable",
      );
    }
    return pod;
  }

  private execPod(objectName: string): PodResource {
    const pod = this.podOf(objectName);
    if (pod.status?.phase !== "Running") {
      throw new KubernetesError(
        `sandbox "${objectName}" is not running (pod phase ${pod.status?.phase ?? "unknown"})`,
        "Unavailable",
      );
    }
    return pod;
  }
}
