// An in-memory SandboxDriver for the fast test tier of the RPC layer. It is never the only proof of
// Kubernetes behaviour: test/kubernetes and test/testbed run the real driver against the real cluster.

import { spawn } from "node:child_process";
import type { RenderedObject, RenderTarget } from "../../src/render/sandbox.js";
import { LABELS } from "../../src/render/sandbox.js";
import type {
  DriverEvent,
  ExecChunk,
  ExecOptions,
  ObservedSandbox,
  Phase,
  PlatformEvent,
  SandboxDriver,
} from "../../src/kubernetes/types.js";
import { KubernetesError } from "../../src/kubernetes/types.js";

export class MemoryDriver implements SandboxDriver {
  readonly objects = new Map<string, { object: RenderedObject; observed: ObservedSandbox }>();
  readonly created: RenderedObject[] = [];
  private readonly listeners = new Set<(event: DriverEvent) => void>();
  /** The next create fails with this error (once). */
  failNextCreate: KubernetesError | undefined;
  /** Objects become READY this many ms after create, and disappear this many ms after delete (like a cluster). */
  autoSettleMs: number | undefined;
  reachable = true;

  constructor(
    private readonly renderTarget: RenderTarget = { resource: "agent-sandbox", apiVersion: "v1beta1" },
  ) {}

  target(): Promise<RenderTarget> {
    return Promise.resolve(this.renderTarget);
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  apiReachable(): boolean {
    return this.reachable;
  }
  subscribe(listener: (event: DriverEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  private emit(event: DriverEvent): void {
    for (const listener of this.listeners) listener(event);
  }
  observed(objectName: string): ObservedSandbox | undefined {
    return this.objects.get(objectName)?.observed;
  }
  observedAll(): ObservedSandbox[] {
    return [...this.objects.values()].map((o) => o.observed);
  }
  events(): readonly PlatformEvent[] {
    return [];
  }
  serviceAccountPullSecrets(): Promise<string[]> {
    return Promise.resolve([]);
  }
  create(object: RenderedObject): Promise<void> {
    if (this.failNextCreate) {
      const err = this.failNextCreate;
      this.failNextCreate = undefined;
      return Promise.reject(err);
    }
    const name = object.metadata!.name!;
    if (this.objects.has(name))
      return Promise.reject(new KubernetesError(`${name} already exists`, "AlreadyExists", 409));
    const observed: ObservedSandbox = {
      sandboxId: object.metadata!.labels![LABELS.sandboxId]!,
      objectName: name,
      phase: "PROVISIONING",
      conditions: [],
      podName: undefined,
      waiting: [],
      exitCode: undefined,
      restartCount: 0,
      startedAtMs: undefined,
      deleting: false,
      resourceVersion: "1",
    };
    this.objects.set(name, { object, observed });
    this.created.push(object);
    this.emit({ type: "changed", sandbox: observed });
    if (this.autoSettleMs !== undefined)
      setTimeout(() => this.objects.has(name) && this.setPhase(name, "READY"), this.autoSettleMs);
    return Promise.resolve();
  }
  /** Moves an object to a phase, as the reflector would after a watch event. */
  setPhase(objectName: string, phase: Phase, extra: Partial<ObservedSandbox> = {}): void {
    const entry = this.objects.get(objectName);
    if (!entry) throw new Error(`no object ${objectName}`);
    entry.observed = { ...entry.observed, phase, podName: `${objectName}`, ...extra };
    this.emit({ type: "changed", sandbox: entry.observed });
  }
  /** Removes an object as if it disappeared from the cluster. */
  vanish(objectName: string): void {
    const entry = this.objects.get(objectName);
    if (!entry) return;
    this.objects.delete(objectName);
    this.emit({ type: "deleted", sandboxId: entry.observed.sandboxId, objectName });
  }
  delete(objectName: string): Promise<boolean> {
    const existed = this.objects.has(objectName);
    if (existed) {
      const entry = this.objects.get(objectName)!;
      entry.observed = { ...entry.observed, deleting: true, phase: "DELETING" };
      if (this.autoSettleMs !== undefined) setTimeout(() => this.vanish(objectName), this.autoSettleMs);
    }
    return Promise.resolve(existed);
  }
  stopSandbox(objectName: string): Promise<void> {
    this.setPhase(objectName, "STOPPED");
    return Promise.resolve();
  }
  startSandbox(objectName: string): Promise<void> {
    this.setPhase(objectName, "PROVISIONING");
    return Promise.resolve();
  }
  logs(objectName: string): Promise<string> {
    if (!this.objects.has(objectName))
      return Promise.reject(new KubernetesError(`sandbox "${objectName}" not found`, "NotFound"));
    return Promise.resolve(`log of ${objectName}\n`);
  }

  /**
   * Runs the command as a local process (the test's own commands only), so that stdout, stderr, stdin
   * and exit codes behave as they would in a container.
   */
  async *exec(_objectName: string, options: ExecOptions): AsyncGenerator<ExecChunk> {
    const [file, ...args] = options.command;
    const child = spawn(file!, args, { env: { PATH: process.env.PATH ?? "", ...options.environment } });
    const chunks: ExecChunk[] = [];
    let wake: (() => void) | undefined;
    const push = (chunk: ExecChunk) => {
      chunks.push(chunk);
      wake?.();
    };
    child.stdout.on("data", (data: Buffer) => push({ type: "stdout", data }));
    child.stderr.on("data", (data: Buffer) => push({ type: "stderr", data }));
    child.on("close", (code) => push({ type: "exit", code: code ?? 1 }));
    child.stdin.on("error", () => undefined); // the command may exit without reading its input
    child.stdin.end(options.stdin ?? new Uint8Array());
    for (;;) {
      while (chunks.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const chunk = chunks.shift()!;
      yield chunk;
      if (chunk.type === "exit") return;
    }
  }
}
