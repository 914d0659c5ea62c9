// The chart on the real cluster: the test bed's helm and kubectl, the gateway image built without Docker
// (once per tree content), helm releases in namespaces of their own, and the installed gateway's API on its
// pod IP. Shared by test/chart/install.test.ts and test/e2e/installed-gateway.test.ts.

import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import http2 from "node:http2";
import path from "node:path";
import type { TestContext } from "node:test";

import type { V1Pod } from "@kubernetes/client-node";

import { REPO_ROOT, describePod, eventsFor, uniqueName, waitFor, type Cluster } from "./cluster.js";

export const CHART = path.join(REPO_ROOT, "deploy", "helm", "openshell");
const BUILD_IMAGE = path.join(REPO_ROOT, "deploy", "docker", "build-image.sh");
export const GATEWAY_REPO = "openshell-test/gateway";

export function testbedTool(name: "TESTBED_HELM" | "TESTBED_KUBECTL"): string {
  if (process.env[name]) return process.env[name];
  const r = spawnSync("bash", [path.join(REPO_ROOT, "testbed", "cluster.sh"), "env"], { encoding: "utf8" });
  const m = new RegExp(`^export ${name}=(.*)$`, "m").exec(r.stdout);
  assert.ok(m?.[1] && existsSync(m[1]), `${name} not built: run \`bash testbed/cluster.sh build\``);
  return m[1];
}

export function run(cmd: string, args: readonly string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return r;
}

export function must(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** A namespace for one release or scenario, ready for pods (its default ServiceAccount exists). */
export async function createNamespace(
  c: Cluster,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const name = uniqueName(prefix);
  await c.core.createNamespace({
    body: { metadata: { name, labels: { "openshell.ai/test": "chart", ...labels } } },
  });
  // pods are admitted only once the namespace's default ServiceAccount exists
  await waitFor(
    async () => {
      const sas = await c.core.listNamespacedServiceAccount({ namespace: name });
      return sas.items.some((sa) => sa.metadata?.name === "default");
    },
    { timeoutMs: 30_000, description: `default ServiceAccount in ${name}` },
  );
  return name;
}

/** Waits until the pod is Ready; on timeout the error says what the pod and its events show. */
export async function podReady(c: Cluster, ns: string, name: string, timeoutMs: number): Promise<V1Pod> {
  let last: V1Pod | undefined;
  try {
    return await waitFor(
      async () => {
        try {
          last = await c.core.readNamespacedPod({ name, namespace: ns });
        } catch {
          return undefined;
        }
        const ready = last.status?.conditions?.find((x) => x.type === "Ready")?.status === "True";
        return ready ? last : undefined;
      },
      { timeoutMs, description: `pod ${ns}/${name} Ready` },
    );
  } catch (err) {
    const ev = await eventsFor(ns, name).catch(() => []);
    throw new Error(`${(err as Error).message}; ${describePod(last)}; events: ${ev.join(" | ")}`, {
      cause: err,
    });
  }
}

/** One Connect unary call with a JSON body over h2c (the gateway serves HTTP/2 without TLS here). */
export function connectUnary(
  origin: string,
  procedure: string,
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(origin);
    client.on("error", reject);
    const req = client.request({
      ":method": "POST",
      ":path": procedure,
      "content-type": "application/json",
      "connect-protocol-version": "1",
    });
    let status = 0;
    let data = "";
    req.setEncoding("utf8");
    req.setTimeout(60_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.on("response", (headers) => (status = Number(headers[":status"])));
    req.on("data", (chunk: string) => (data += chunk));
    req.on("end", () => {
      client.close();
      resolve({ status, body: data });
    });
    req.on("error", (err: Error) => {
      client.close();
      reject(err);
    });
    req.end(JSON.stringify(body));
  });
}

/** The Connect error code and message of a failed unary call (JSON error body). */
export function connectError(res: { status: number; body: string }): { code: string; message: string } {
  try {
    const parsed = JSON.parse(res.body) as { code?: string; message?: string };
    return { code: parsed.code ?? "", message: parsed.message ?? "" };
  } catch {
    return { code: "", message: res.body };
  }
}

/** Phase timings, reported as test diagnostics (seconds since the previous mark and since the start). */
export function stopwatch(t: TestContext): (phase: string) => void {
  const start = Date.now();
  let last = start;
  return (phase) => {
    const now = Date.now();
    t.diagnostic(
      `timing ${phase}: ${((now - last) / 1000).toFixed(1)} s (total ${((now - start) / 1000).toFixed(1)} s)`,
    );
    last = now;
  };
}

/** Hash of everything that goes into the gateway image, so one tree content is built and pushed once. */
function imageContentTag(): string {
  const hash = createHash("sha256");
  const add = (file: string) => {
    const st = statSync(file);
    if (st.isDirectory()) {
      for (const entry of readdirSync(file).sort()) add(path.join(file, entry));
    } else {
      hash.update(path.relative(REPO_ROOT, file)).update("\0").update(readFileSync(file)).update("\0");
    }
  };
  for (const input of ["dist", "bin", "package.json", "package-lock.json", BUILD_IMAGE, "testbed/image.sh"]) {
    add(path.resolve(REPO_ROOT, input));
  }
  hash.update(process.version);
  return `tree-${hash.digest("hex").slice(0, 16)}`;
}

/**
 * The gateway image of this tree in the test bed's private registry: built with
 * deploy/docker/build-image.sh and pushed unless that content is already there. Test files building at the
 * same time take turns (flock); the second finds the image pushed.
 */
export function gatewayImage(c: Cluster): { repository: string; tag: string; built: boolean } {
  const tag = imageContentTag();
  const repository = `${c.registry.host}/${GATEWAY_REPO}`;
  const layout = path.join(REPO_ROOT, "build", "oci", "gateway");
  mkdirSync(path.dirname(layout), { recursive: true });
  // credentials go to curl on stdin (printf is a builtin), never on a command line
  const script = `
    if printf 'user = "%s:%s"\\n' "$USER_NAME" "$(cat "$PASSWORD_FILE")" |
      curl -K - -fsS -o /dev/null --cacert "$CA" \\
        -H "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" \\
        "https://$HOST/v2/$REPO/manifests/$TAG" 2>/dev/null; then
      echo present
    else
      bash "$BUILD" --layout "$LAYOUT" --tag "$TAG" --push "$HOST/$REPO:$TAG" >&2
      echo built
    fi`;
  const r = spawnSync("flock", [`${layout}.lock`, "bash", "-euo", "pipefail", "-c", script], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 10 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
    env: {
      ...process.env,
      USER_NAME: c.registry.user,
      PASSWORD_FILE: path.join(path.dirname(c.registry.caPath), "password"),
      CA: c.registry.caPath,
      HOST: c.registry.host,
      REPO: GATEWAY_REPO,
      TAG: tag,
      BUILD: BUILD_IMAGE,
      LAYOUT: layout,
    },
  });
  if (r.error) throw r.error;
  const outcome = r.stdout.trim();
  assert.equal(r.status, 0, `gateway image ${repository}:${tag}: exit ${r.status}\n${r.stderr.slice(-3000)}`);
  assert.ok(outcome === "present" || outcome === "built", `gateway image: unexpected output ${outcome}`);
  return { repository, tag, built: outcome === "built" };
}
