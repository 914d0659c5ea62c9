// Shared pieces of the fault tests (test/reliability): a namespace where no pod can start, the flags that
// keep a gateway under test fast to reconcile, and both sides of the truth (records via the API, Sandbox
// objects via the API server) to compare after a fault.

import type { TestContext } from "node:test";
import type { Client } from "@connectrpc/connect";
import { CustomObjectsApi } from "@kubernetes/client-node";
import type { OpenShell, Sandbox } from "../../src/gen/openshell/v1/openshell_pb.js";
import { LABELS } from "../../src/render/sandbox.js";
import { requireCluster, waitFor, withNamespace, type Cluster } from "./cluster.js";

export const scope = { selection: { case: "workspace" as const, value: "default" } };

export interface SandboxObject {
  metadata: {
    name: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    resourceVersion?: string;
  };
  status?: { conditions?: { type: string; status?: string; reason?: string; message?: string }[] };
}

/**
 * A test namespace with a ResourceQuota of zero pods: the agent-sandbox controller's pod creations are
 * refused, so Sandbox objects come and go without loading the kubelet.
 */
export async function noPodNamespace(t: TestContext, prefix: string): Promise<string> {
  const cluster = await requireCluster("full");
  const namespace = await withNamespace(t, prefix);
  await cluster.core.createNamespacedResourceQuota({
    namespace,
    body: { metadata: { name: "no-pods" }, spec: { hard: { pods: "0" } } },
  });
  // The quota admission plugin enforces a quota only once its status has been computed.
  await waitFor(
    async () =>
      (await cluster.core.readNamespacedResourceQuota({ name: "no-pods", namespace })).status?.hard?.pods ===
      "0",
    { timeoutMs: 30_000, description: "ResourceQuota status" },
  );
  return namespace;
}

/** Gateway flags for fault tests: no preflight (no registry involved), fast reconcile. */
export function faultTestArgs(cluster: Cluster, reconcileSeconds = 2, orphanGraceSeconds = 2): string[] {
  return [
    "--pull-secret-preflight",
    "off",
    "--sandbox-resource",
    "agent-sandbox",
    "--sandbox-image",
    `${cluster.registry.publicHost}/openshell-test/never-pulled:v1`,
    "--reconcile-interval-seconds",
    String(reconcileSeconds),
    "--orphan-grace-seconds",
    String(orphanGraceSeconds),
  ];
}

/** Every record in the default workspace, through the API. */
export async function listRecords(client: Client<typeof OpenShell>): Promise<Sandbox[]> {
  const records: Sandbox[] = [];
  let pageToken = "";
  do {
    const page = await client.listSandboxes({ workspaceScope: scope, pageSize: 500, pageToken });
    records.push(...page.sandboxes);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return records;
}

/** Sandbox objects carrying our managed-by label, read from the test bed's main API server. */
export async function listSandboxObjects(namespace: string): Promise<SandboxObject[]> {
  const cluster = await requireCluster("full");
  const list = (await cluster.kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: "agents.x-k8s.io",
    version: "v1beta1",
    namespace,
    plural: "sandboxes",
    labelSelector: `${LABELS.managedBy}=openshell`,
  })) as { items: SandboxObject[] };
  return list.items;
}

/** Records and objects pair up one to one by sandbox id; returns what does not (empty when consistent). */
export function mismatches(records: Sandbox[], objects: SandboxObject[]): string[] {
  const problems: string[] = [];
  const recordIds = new Set(records.map((r) => r.metadata!.id));
  const objectIds = objects.map((o) => o.metadata.labels?.[LABELS.sandboxId] ?? "");
  for (const [i, id] of objectIds.entries()) {
    if (!recordIds.has(id)) problems.push(`object ${objects[i]!.metadata.name} (${id}) has no record`);
  }
  for (const r of records) {
    const n = objectIds.filter((id) => id === r.metadata!.id).length;
    if (n !== 1) problems.push(`record ${r.metadata!.name} has ${n} objects`);
  }
  return problems;
}

/** How long a promise took to settle, and its outcome. */
export async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - started, value };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}
