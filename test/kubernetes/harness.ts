// Helpers for the driver's integration tests on the test bed: a driver per test namespace, a Watch
// whose connections a test can cut, and waiting on the driver's event stream.

import type { TestContext } from "node:test";

import { Watch } from "@kubernetes/client-node";
import { Registry } from "prom-client";

import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import { KubernetesDriver, type KubernetesDriverOptions } from "../../src/kubernetes/driver.js";
import type { WatchLike } from "../../src/kubernetes/reflector.js";
import type { DriverEvent, ObservedSandbox } from "../../src/kubernetes/types.js";
import type { Cluster } from "../support/cluster.js";

export const SANDBOX_ID = "3b1f8a52-9c3e-4d7a-8f21-0c6b5e4d2a10";

/** A real Watch whose open connections can be cut, and whose next resourceVersion can be forced. */
export class ControlledWatch implements WatchLike {
  private readonly inner: Watch;
  readonly open = new Map<string, AbortController>();
  /** Per path: the resourceVersion the next watch of that path asks for (e.g. "1" to provoke a 410). */
  readonly forceResourceVersion = new Map<string, string>();
  readonly calls: { path: string; resourceVersion: string }[] = [];

  constructor(cluster: Cluster) {
    this.inner = new Watch(cluster.kc);
  }

  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const forced = this.forceResourceVersion.get(path);
    if (forced !== undefined) {
      this.forceResourceVersion.delete(path);
      query = { ...query, resourceVersion: forced };
    }
    this.calls.push({ path, resourceVersion: String(query.resourceVersion ?? "") });
    const controller = await this.inner.watch(path, query, callback, done);
    this.open.set(path, controller);
    return controller;
  }

  /** Aborts the open watch of every path ending with `suffix` (as a dropped connection would end it). */
  cut(suffix: string): number {
    let n = 0;
    for (const [path, controller] of this.open) {
      if (!path.endsWith(suffix)) continue;
      controller.abort();
      this.open.delete(path);
      n += 1;
    }
    return n;
  }

  watchesOf(suffix: string): number {
    return this.calls.filter((c) => c.path.endsWith(suffix)).length;
  }
}

export interface DriverHarness {
  readonly driver: KubernetesDriver;
  readonly registry: Registry;
  readonly watch: ControlledWatch;
  readonly events: DriverEvent[];
  readonly config: GatewayConfig;
  /** Resolves with the first driver event (already received or future) that matches. */
  waitForEvent<T extends DriverEvent>(
    match: (e: DriverEvent) => e is T,
    timeoutMs: number,
    description: string,
  ): Promise<T>;
  waitForPhase(objectName: string, phases: string[], timeoutMs: number): Promise<ObservedSandbox>;
}

export async function startDriver(
  t: TestContext,
  cluster: Cluster,
  namespace: string,
  overrides: Partial<GatewayConfig> = {},
  options: Partial<KubernetesDriverOptions> = {},
): Promise<DriverHarness> {
  const config: GatewayConfig = { ...defaultConfig(), namespace, ...overrides };
  const registry = new Registry();
  const watch = new ControlledWatch(cluster);
  const driver = new KubernetesDriver({ config, kubeConfig: cluster.kc, registry, watch, ...options });
  const events: DriverEvent[] = [];
  const waiters = new Set<(e: DriverEvent) => void>();
  driver.subscribe((e) => {
    events.push(e);
    for (const w of waiters) w(e);
  });
  await driver.start();
  t.after(() => driver.stop());

  const waitForEvent = <T extends DriverEvent>(
    match: (e: DriverEvent) => e is T,
    timeoutMs: number,
    description: string,
  ): Promise<T> => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        const last = events
          .slice(-5)
          .map((e) =>
            e.type === "changed"
              ? `changed:${e.sandbox.objectName}:${e.sandbox.phase}`
              : e.type === "event"
                ? `event:${e.event.metadata.involved_name}:${e.event.reason}: ${e.event.message}`
                : `deleted:${e.objectName}`,
          )
          .join(", ");
        reject(
          new Error(`timed out after ${timeoutMs}ms waiting for ${description}; last driver events: ${last}`),
        );
      }, timeoutMs);
      const check = (e: DriverEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(e);
      };
      waiters.add(check);
    });
  };

  const waitForPhase = async (objectName: string, phases: string[], timeoutMs: number) => {
    const current = driver.observed(objectName);
    if (current && phases.includes(current.phase)) return current;
    const e = await waitForEvent(
      (e): e is Extract<DriverEvent, { type: "changed" }> =>
        e.type === "changed" && e.sandbox.objectName === objectName && phases.includes(e.sandbox.phase),
      timeoutMs,
      `${objectName} in ${phases.join("|")} (now ${driver.observed(objectName)?.phase ?? "absent"})`,
    );
    return e.sandbox;
  };

  return { driver, registry, watch, events, config, waitForEvent, waitForPhase };
}

export async function restartCount(registry: Registry, resource: string, reason: string): Promise<number> {
  const metric = registry.getSingleMetric("openshell_kubernetes_watch_restarts_total");
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => v.labels.resource === resource && v.labels.reason === reason)?.value ?? 0;
}

export function decode(chunks: { type: string; data?: Uint8Array }[], type: "stdout" | "stderr"): string {
  return Buffer.concat(chunks.filter((c) => c.type === type).map((c) => Buffer.from(c.data!))).toString(
    "utf8",
  );
}
