// The bench's namespaces on the shared test bed: labelled as the bench's, annotated with the owning
// process, quota'd to zero pods where thousands of Sandbox objects are created (the agent-sandbox
// controller's pod creations are refused, so the single kubelet does nothing), and deleted at the end.
// A namespace whose owning process is gone (an interrupted run) is deleted by the next run.

import { hostname } from "node:os";
import type { Cluster } from "../test/support/cluster.js";
import { createPullSecret, uniqueName, waitFor } from "../test/support/cluster.js";

export const BENCH_LABEL = "openshell.ai/bench";
const OWNER_ANNOTATION = "openshell.ai/bench-owner";
const STARTED_ANNOTATION = "openshell.ai/bench-started";
/** A namespace of a run on another host is stale after this long. */
const FOREIGN_STALE_MS = 6 * 3600_000;

function ownerAlive(owner: string | undefined, startedMs: number): boolean {
  const [host, pidText] = (owner ?? "").split("/");
  if (host !== hostname()) return Date.now() - startedMs < FOREIGN_STALE_MS;
  try {
    process.kill(Number(pidText), 0);
    return true;
  } catch {
    return false;
  }
}

/** Deletes the bench namespaces of runs that are no longer running; returns their names. */
export async function deleteStaleNamespaces(cluster: Cluster): Promise<string[]> {
  const list = await cluster.core.listNamespace({ labelSelector: BENCH_LABEL });
  const stale: string[] = [];
  for (const ns of list.items) {
    const name = ns.metadata?.name ?? "";
    const annotations = ns.metadata?.annotations ?? {};
    const started = Date.parse(annotations[STARTED_ANNOTATION] ?? "") || 0;
    if (ns.status?.phase === "Terminating" || ownerAlive(annotations[OWNER_ANNOTATION], started)) continue;
    await cluster.core.deleteNamespace({ name, propagationPolicy: "Background" }).catch(() => undefined);
    stale.push(name);
  }
  return stale;
}

export interface NamespaceOptions {
  /** Refuse every pod (and Service): Sandbox objects exist, nothing runs. */
  readonly noPods: boolean;
}

export async function createBenchNamespace(
  cluster: Cluster,
  prefix: string,
  options: NamespaceOptions,
): Promise<string> {
  const name = uniqueName(`bench-${prefix}`);
  await cluster.core.createNamespace({
    body: {
      metadata: {
        name,
        labels: { [BENCH_LABEL]: "true", "openshell.ai/test": "bench" },
        annotations: {
          [OWNER_ANNOTATION]: `${hostname()}/${process.pid}`,
          [STARTED_ANNOTATION]: new Date().toISOString(),
        },
      },
    },
  });
  if (options.noPods) {
    await cluster.core.createNamespacedResourceQuota({
      namespace: name,
      body: { metadata: { name: "bench-no-pods" }, spec: { hard: { pods: "0", services: "0" } } },
    });
    // Until the quota controller has filled in status.hard, admission refuses pods anyway, but the
    // objects should only be created once the namespace is in its final state.
    await waitFor(
      async () => {
        const q = await cluster.core.readNamespacedResourceQuota({ name: "bench-no-pods", namespace: name });
        return q.status?.hard?.pods === "0";
      },
      { timeoutMs: 30_000, intervalMs: 100, description: `quota status in ${name}` },
    );
  } else {
    // the ServiceAccount admission plugin rejects pods until the default SA exists
    await waitFor(
      async () => {
        await cluster.core.readNamespacedServiceAccount({ name: "default", namespace: name });
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, description: `default ServiceAccount in ${name}` },
    );
  }
  await createPullSecret(name, "regcred");
  return name;
}

/** Deletes the namespaces and waits (up to timeoutMs) until they are gone; returns those still there. */
export async function deleteNamespaces(
  cluster: Cluster,
  names: string[],
  timeoutMs: number,
): Promise<string[]> {
  for (const name of names)
    await cluster.core.deleteNamespace({ name, propagationPolicy: "Background" }).catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  let remaining = names;
  while (remaining.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const list = await cluster.core.listNamespace({ labelSelector: BENCH_LABEL });
    const present = new Set(list.items.map((n) => n.metadata?.name ?? ""));
    remaining = remaining.filter((n) => present.has(n));
  }
  return remaining;
}
