// Test harness for the local Kubernetes test bed (testbed/cluster.sh).
//
// requireCluster(tier) starts the tier (or reuses a running cluster of the same or a higher
// tier) and returns a client for it. A test that needs the cluster and cannot get one FAILS
// with the reason: nothing here skips.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestContext } from "node:test";

import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
  type V1Pod,
} from "@kubernetes/client-node";

const execFileP = promisify(execFile);

export type Tier = "api" | "full";

export interface RegistryInfo {
  /** host:port of the private registry (TLS with the test bed CA, htpasswd auth) */
  host: string;
  user: string;
  password: string;
  /** CA certificate that signed the registry's serving certificate */
  caPath: string;
  /** directory with only ca.crt, for skopeo/containers-image --cert-dir */
  certDir: string;
  /** host:port of the registry without auth (plain HTTP) */
  publicHost: string;
}

export interface Cluster {
  tier: Tier;
  kubeconfigPath: string;
  kc: KubeConfig;
  core: CoreV1Api;
  objects: KubernetesObjectApi;
  registry: RegistryInfo;
  kubectlPath: string;
  nodeName: string;
  logsDir: string;
}

interface TestbedInfo {
  tier: Tier;
  kubeconfig: string;
  kubectl: string;
  nodeName: string;
  logs: string;
  registry: {
    host: string;
    user: string;
    passwordFile: string;
    caPath: string;
    certDir: string;
    publicHost: string;
  };
}

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLUSTER_SH = path.join(REPO_ROOT, "testbed", "cluster.sh");
export const IMAGE_SH = path.join(REPO_ROOT, "testbed", "image.sh");
export const TESTBED_STATE = process.env.TESTBED_STATE ?? "/var/lib/openshell-testbed";
export const FIELD_MANAGER = "openshell-testbed-tests";

const TIER_RANK: Record<Tier, number> = { api: 1, full: 2 };

let current: Cluster | undefined;
let pending: Promise<Cluster> | undefined;
let pendingTier: Tier | undefined;

async function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, {
      cwd: REPO_ROOT,
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      env: process.env,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string; code?: unknown };
    const tail = (e.stderr ?? "").split("\n").slice(-25).join("\n");
    throw new Error(`command failed: ${cmd} ${args.join(" ")} (exit ${String(e.code)})\n${tail}`, {
      cause: err,
    });
  }
}

async function startCluster(tier: Tier): Promise<Cluster> {
  if (process.getuid?.() !== 0) {
    throw new Error("the Kubernetes test bed needs root (it starts containerd, kubelet and network devices)");
  }
  // `up` is idempotent and takes a lock: concurrent test files share one cluster.
  // A cold `up full` takes well under a minute once `cluster.sh build` has run.
  await run("bash", [CLUSTER_SH, "up", tier], 10 * 60_000);
  const infoPath = path.join(TESTBED_STATE, "testbed.json");
  const info = JSON.parse(readFileSync(infoPath, "utf8")) as TestbedInfo;
  if (TIER_RANK[info.tier] < TIER_RANK[tier]) {
    throw new Error(`cluster.sh up ${tier} left tier ${info.tier} running (${infoPath})`);
  }
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const cluster: Cluster = {
    tier: info.tier,
    kubeconfigPath: info.kubeconfig,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    objects: KubernetesObjectApi.makeApiClient(kc),
    registry: {
      host: info.registry.host,
      user: info.registry.user,
      password: readFileSync(info.registry.passwordFile, "utf8").trim(),
      caPath: info.registry.caPath,
      certDir: info.registry.certDir,
      publicHost: info.registry.publicHost,
    },
    kubectlPath: info.kubectl,
    nodeName: info.nodeName,
    logsDir: info.logs,
  };
  // the API must answer with our credentials before tests start
  await cluster.core.listNamespace({ limit: 1 });
  return cluster;
}

/**
 * Start (or reuse) the test bed at `tier` or higher. Throws with the reason when the cluster
 * cannot be had: callers must not turn this into a skip.
 */
export async function requireCluster(tier: Tier): Promise<Cluster> {
  if (current && TIER_RANK[current.tier] >= TIER_RANK[tier]) return current;
  if (pending && pendingTier && TIER_RANK[pendingTier] >= TIER_RANK[tier]) return pending;
  pendingTier = tier;
  pending = startCluster(tier).then(
    (c) => {
      current = c;
      return c;
    },
    (err: unknown) => {
      pending = undefined;
      pendingTier = undefined;
      throw err;
    },
  );
  return pending;
}

function cluster(): Cluster {
  if (!current) throw new Error("requireCluster() must be awaited before using the test bed helpers");
  return current;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString("hex")}`.toLowerCase();
}

/** Create a unique namespace for this test; it is deleted (in the background) after the test. */
export async function withNamespace(t: TestContext, prefix = "tb"): Promise<string> {
  const c = cluster();
  const name = uniqueName(prefix);
  await c.core.createNamespace({
    body: { metadata: { name, labels: { "openshell.ai/test": "testbed" } } },
  });
  t.after(async () => {
    await deleteNamespace(name);
  });
  // the ServiceAccount admission plugin rejects pods until the default SA exists
  await waitFor(
    async () => {
      try {
        await c.core.readNamespacedServiceAccount({ name: "default", namespace: name });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    { timeoutMs: 30_000, description: `default ServiceAccount in ${name}` },
  );
  return name;
}

export async function deleteNamespace(name: string): Promise<void> {
  try {
    await cluster().core.deleteNamespace({ name, propagationPolicy: "Background" });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export interface Credentials {
  server: string;
  user: string;
  password: string;
}

/** A kubernetes.io/dockerconfigjson Secret (the kubelet keys credentials by host:port). */
/** A dockerconfigjson Secret; by default with the test bed's private-registry credentials. */
export async function createPullSecret(
  ns: string,
  name: string,
  creds: Credentials = {
    server: cluster().registry.host,
    user: cluster().registry.user,
    password: cluster().registry.password,
  },
): Promise<void> {
  const auth = Buffer.from(`${creds.user}:${creds.password}`).toString("base64");
  const dockerconfig = {
    auths: { [creds.server]: { username: creds.user, password: creds.password, auth } },
  };
  await cluster().core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name },
      type: "kubernetes.io/dockerconfigjson",
      data: { ".dockerconfigjson": Buffer.from(JSON.stringify(dockerconfig)).toString("base64") },
    },
  });
}

const pushed = new Map<string, Promise<string>>();

/**
 * Build the busybox sandbox test image (testbed/image.sh) and push it to the private registry
 * as name:tag. Returns the full reference (127.0.0.1:<port>/name:tag). Pushed once per process.
 */
export async function pushTestImage(name: string, tag: string): Promise<string> {
  cluster();
  const key = `${name}:${tag}`;
  let p = pushed.get(key);
  if (!p) {
    p = run("bash", [IMAGE_SH, "sandbox", "--image", key], 5 * 60_000).then(
      (out) => out.trim().split("\n").pop() ?? "",
    );
    pushed.set(key, p);
    p.catch(() => pushed.delete(key));
  }
  return p;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  description?: string;
}

/**
 * Poll `fn` until it returns a value other than undefined/false/null; return that value.
 * Errors thrown by `fn` are retried; on timeout the last error or value is in the message.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const intervalMs = opts.intervalMs ?? 500;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false && v !== null) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(
        `timed out after ${timeoutMs}ms waiting for ${opts.description ?? "condition"} (last: ${detail})`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Server-side apply of any object (typed or custom resource). */
export async function serverSideApply<T extends KubernetesObject>(
  obj: T,
  opts: { dryRun?: boolean } = {},
): Promise<T> {
  return cluster().objects.patch(
    obj,
    undefined,
    opts.dryRun ? "All" : undefined,
    FIELD_MANAGER,
    true,
    PatchStrategy.ServerSideApply,
  );
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

/** The Status body of an API error (message, reason, details), parsed when it is a string. */
export function apiErrorStatus(
  err: unknown,
): { code: number; reason?: string; message?: string } | undefined {
  if (!(err instanceof ApiException)) return undefined;
  let body: unknown = err.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      return { code: err.code, message: body as string };
    }
  }
  const b = (body ?? {}) as { reason?: string; message?: string };
  return { code: err.code, reason: b.reason, message: b.message };
}

export async function getPod(ns: string, name: string): Promise<V1Pod | undefined> {
  try {
    return await cluster().core.readNamespacedPod({ name, namespace: ns });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Events of one object, oldest first, as "Reason: message" lines (for assertions and diagnostics). */
export async function eventsFor(ns: string, name: string): Promise<string[]> {
  const list = await cluster().core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items
    .sort((a, b) =>
      String(a.lastTimestamp ?? a.eventTime ?? "").localeCompare(
        String(b.lastTimestamp ?? b.eventTime ?? ""),
      ),
    )
    .map((e) => `${e.reason ?? ""}: ${e.message ?? ""}`);
}

/** A one-line summary of a pod's phase and container states, for failure messages. */
export function describePod(pod: V1Pod | undefined): string {
  if (!pod) return "pod not found";
  const cs = (pod.status?.containerStatuses ?? []).map((s) => {
    const st = s.state?.waiting
      ? `waiting(${s.state.waiting.reason ?? ""}: ${s.state.waiting.message ?? ""})`
      : s.state?.running
        ? "running"
        : s.state?.terminated
          ? `terminated(${s.state.terminated.reason ?? ""})`
          : "unknown";
    return `${s.name}=${st}`;
  });
  return `phase=${pod.status?.phase ?? "?"} ${cs.join(" ")}`;
}

/** Wait until the pod's container `container` is running; returns the pod. */
export async function waitForPodRunning(ns: string, name: string, timeoutMs = 120_000): Promise<V1Pod> {
  let last: V1Pod | undefined;
  try {
    return await waitFor(
      async () => {
        last = await getPod(ns, name);
        return last?.status?.phase === "Running" ? last : undefined;
      },
      { timeoutMs, description: `pod ${ns}/${name} Running` },
    );
  } catch (err) {
    const ev = await eventsFor(ns, name).catch(() => []);
    throw new Error(`${(err as Error).message}; ${describePod(last)}; events: ${ev.join(" | ")}`, {
      cause: err,
    });
  }
}

/** Wait until a container of the pod is waiting with one of `reasons`; returns that reason. */
export async function waitForContainerWaiting(
  ns: string,
  name: string,
  reasons: string[],
  timeoutMs = 90_000,
): Promise<{ reason: string; message: string; pod: V1Pod }> {
  let last: V1Pod | undefined;
  try {
    return await waitFor(
      async () => {
        last = await getPod(ns, name);
        for (const s of last?.status?.containerStatuses ?? []) {
          const w = s.state?.waiting;
          if (w?.reason && reasons.includes(w.reason))
            return { reason: w.reason, message: w.message ?? "", pod: last! };
        }
        return undefined;
      },
      { timeoutMs, description: `pod ${ns}/${name} waiting with ${reasons.join("|")}` },
    );
  } catch (err) {
    const ev = await eventsFor(ns, name).catch(() => []);
    throw new Error(`${(err as Error).message}; ${describePod(last)}; events: ${ev.join(" | ")}`, {
      cause: err,
    });
  }
}
