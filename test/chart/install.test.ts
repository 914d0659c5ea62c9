// The chart on the real cluster (test bed tier full): the gateway image built without Docker
// (deploy/docker/build-image.sh) is pushed to the authenticated registry; `helm install` with
// `imagePullSecrets` makes the gateway pod pull and become Ready, while a release without the secret stays
// in ErrImagePull/ImagePullBackOff (negative control). A sandbox created through the installed gateway
// pulls its private image with `server.sandboxImagePullSecrets`. `helm uninstall` leaves nothing behind.
//
// A missing tool or cluster FAILS the test with the reason: nothing skips.

import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync } from "node:fs";
import http2 from "node:http2";
import path from "node:path";
import { after, test } from "node:test";

import type { V1Pod } from "@kubernetes/client-node";

import {
  REPO_ROOT,
  createPullSecret,
  deleteNamespace,
  describePod,
  eventsFor,
  pushTestImage,
  requireCluster,
  uniqueName,
  waitFor,
  waitForContainerWaiting,
  type Cluster,
} from "../support/cluster.js";

const CHART = path.join(REPO_ROOT, "deploy", "helm", "openshell");
const BUILD_IMAGE = path.join(REPO_ROOT, "deploy", "docker", "build-image.sh");
const GATEWAY_REPO = "openshell-test/gateway";

function testbedTool(name: "TESTBED_HELM" | "TESTBED_KUBECTL"): string {
  if (process.env[name]) return process.env[name];
  const r = spawnSync("bash", [path.join(REPO_ROOT, "testbed", "cluster.sh"), "env"], { encoding: "utf8" });
  const m = new RegExp(`^export ${name}=(.*)$`, "m").exec(r.stdout);
  assert.ok(m?.[1] && existsSync(m[1]), `${name} not built: run \`bash testbed/cluster.sh build\``);
  return m[1];
}

function run(cmd: string, args: readonly string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return r;
}

function must(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

async function createNamespace(
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

async function podReady(c: Cluster, ns: string, name: string, timeoutMs: number): Promise<V1Pod> {
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
function connectUnary(
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

const namespaces: string[] = [];
after(async () => {
  for (const ns of namespaces) await deleteNamespace(ns);
});

test("helm install on the full test bed: private gateway image, negative control, private sandbox image, upgrade rolls, clean uninstall", async () => {
  const c = await requireCluster("full");
  const helm = testbedTool("TESTBED_HELM");
  const kubectl = testbedTool("TESTBED_KUBECTL");
  const kc = ["--kubeconfig", c.kubeconfigPath];
  const creds = { server: c.registry.host, user: c.registry.user, password: c.registry.password };

  // the gateway image, built without Docker and pushed to the authenticated registry
  const tag = `chart-${Date.now().toString(36)}`;
  const pushed = must(
    run(
      "bash",
      [
        BUILD_IMAGE,
        "--layout",
        path.join(REPO_ROOT, "build", "oci", "gateway"),
        "--tag",
        tag,
        "--push",
        `${c.registry.host}/${GATEWAY_REPO}:${tag}`,
      ],
      10 * 60_000,
    ),
    "deploy/docker/build-image.sh --push",
  ).trim();
  assert.equal(pushed.split("\n").pop(), `${c.registry.host}/${GATEWAY_REPO}:${tag}`);
  const sandboxImage = await pushTestImage("openshell-test/sandbox", "busybox");

  // the gateway runs under the restricted Pod Security Standard; sandboxes in their own namespace
  const ns = await createNamespace(c, "chart-gw", { "pod-security.kubernetes.io/enforce": "restricted" });
  const sandboxNs = await createNamespace(c, "chart-sbx");
  const negNs = await createNamespace(c, "chart-neg", { "pod-security.kubernetes.io/enforce": "restricted" });
  namespaces.push(ns, sandboxNs, negNs);
  await createPullSecret(ns, "gateway-regcred", creds);
  await createPullSecret(sandboxNs, "sandbox-regcred", creds);

  const common = [
    "-f",
    path.join(CHART, "ci", "values-plaintext.yaml"),
    "--set",
    `image.repository=${c.registry.host}/${GATEWAY_REPO}`,
    "--set",
    `image.tag=${tag}`,
    "--set",
    "image.pullPolicy=Always",
    // no dynamic volume provisioner in the test bed: SQLite on an emptyDir
    "--set",
    "persistence.enabled=false",
  ];
  must(
    run(helm, [
      "install",
      "openshell",
      CHART,
      "-n",
      ns,
      ...kc,
      ...common,
      "--set",
      "imagePullSecrets[0].name=gateway-regcred",
      "--set",
      `server.sandboxNamespace=${sandboxNs}`,
      "--set",
      `server.sandboxImage=${sandboxImage}`,
      "--set",
      "server.sandboxImagePullSecrets[0].name=sandbox-regcred",
      "--set",
      "server.sandboxImagePullPolicy=Always",
    ]),
    "helm install (with imagePullSecrets)",
  );
  must(
    run(helm, ["install", "neg", CHART, "-n", negNs, ...kc, ...common]),
    "helm install (negative control)",
  );

  const gw = await podReady(c, ns, "openshell-0", 240_000);
  assert.deepEqual(
    gw.spec?.imagePullSecrets?.map((r) => r.name),
    ["gateway-regcred"],
  );
  assert.equal(gw.spec?.securityContext?.runAsUser, 65532);

  const neg = await waitForContainerWaiting(
    negNs,
    "neg-openshell-0",
    ["ErrImagePull", "ImagePullBackOff"],
    120_000,
  );
  assert.match(neg.message, /401|unauthorized|authorization|authentication|no basic auth credentials/i);

  // a sandbox through the installed gateway's API (Connect JSON on the pod IP)
  const podIp = gw.status?.podIP;
  assert.ok(podIp, "gateway pod IP");
  const res = await connectUnary(`http://${podIp}:8080`, "/openshell.v1.OpenShell/CreateSandbox", {
    name: "chart-sbx",
  });
  assert.equal(res.status, 200, `CreateSandbox: ${res.status} ${res.body}`);
  let sandboxPod: V1Pod | undefined;
  await waitFor(
    async () => {
      const pods = await c.core.listNamespacedPod({
        namespace: sandboxNs,
        labelSelector: "openshell.ai/managed-by=openshell",
      });
      sandboxPod = pods.items[0];
      return sandboxPod?.status?.containerStatuses?.some((s) => s.imageID) ? sandboxPod : undefined;
    },
    {
      timeoutMs: 180_000,
      description: `a sandbox pod in ${sandboxNs} that pulled its image (${describePod(sandboxPod)})`,
    },
  );
  assert.deepEqual(
    sandboxPod?.spec?.imagePullSecrets?.map((r) => r.name),
    ["sandbox-regcred"],
  );
  assert.doesNotMatch(JSON.stringify(sandboxPod?.spec), /gateway-regcred/);

  // upgrade: a configuration change rolls the gateway pod (checksum/gateway-config) and it comes back Ready
  must(
    run(helm, [
      "upgrade",
      "openshell",
      CHART,
      "-n",
      ns,
      ...kc,
      "--reuse-values",
      "--set",
      "server.logLevel=debug",
    ]),
    "helm upgrade",
  );
  await waitFor(
    async () => {
      const p = await c.core.readNamespacedPod({ name: "openshell-0", namespace: ns }).catch(() => undefined);
      return p?.metadata?.uid && p.metadata.uid !== gw.metadata?.uid ? p : undefined;
    },
    { timeoutMs: 120_000, description: "the gateway pod to be replaced after helm upgrade" },
  );
  const upgraded = await podReady(c, ns, "openshell-0", 240_000);
  assert.notEqual(
    upgraded.metadata?.annotations?.["checksum/gateway-config"],
    gw.metadata?.annotations?.["checksum/gateway-config"],
  );

  // uninstall: nothing of the release is left (no PVC either: persistence is off here)
  for (const [release, namespace] of [
    ["openshell", ns],
    ["neg", negNs],
  ] as const) {
    must(
      run(helm, ["uninstall", release, "-n", namespace, ...kc, "--wait", "--timeout", "2m"]),
      `helm uninstall ${release}`,
    );
  }
  for (const namespace of [ns, sandboxNs, negNs]) {
    const left = must(
      run(kubectl, [
        ...kc,
        "get",
        "all,configmaps,serviceaccounts,roles,rolebindings,networkpolicies,persistentvolumeclaims",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/part-of=openshell",
        "-o",
        "name",
      ]),
      "kubectl get leftovers",
    );
    assert.deepEqual(
      left.split("\n").filter((l) => l.trim() !== ""),
      [],
      `helm uninstall leaves nothing in ${namespace}`,
    );
  }
});
