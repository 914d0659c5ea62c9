// Acceptance scenarios 3, 12 and 13 against the gateway the chart installs (test bed tier full): the gateway
// image and every sandbox image come from the authenticated registry. Each scenario installs its own release
// into a namespace of its own (gateway and sandboxes together) and deletes it afterwards. The gateway's API
// is reached on its pod IP (plaintext, unauthenticated: ci/values-plaintext.yaml).

import assert from "node:assert/strict";
import { chownSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { before, test, type TestContext } from "node:test";

import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";

import { OpenShell, SandboxPhase, type Sandbox } from "../../src/gen/openshell/v1/openshell_pb.js";
import { CHART, createNamespace, gatewayImage, must, podReady, run, testbedTool } from "../support/chart.js";
import {
  TESTBED_STATE,
  createPullSecret,
  deleteNamespace,
  pushTestImage,
  requireCluster,
  waitFor,
  type Cluster,
} from "../support/cluster.js";
import { cli } from "../support/gateway.js";
import { runSdkFlow } from "../support/sdk.js";

const scope = { selection: { case: "workspace" as const, value: "default" } };
const MANAGED = "openshell.ai/managed-by=openshell";

interface Prepared {
  c: Cluster;
  namespace: string;
  /** the private sandbox image */
  image: string;
}

interface Installed extends Prepared {
  pod: V1Pod;
  origin: string;
}

/** A fresh namespace (deleted after the test) holding the pull secret `regcred` for the private registry. */
async function prepare(t: TestContext, prefix: string): Promise<Prepared> {
  const c = await requireCluster("full");
  const image = await pushTestImage("openshell-test/sandbox", "busybox");
  const namespace = await createNamespace(c, prefix);
  t.after(() => deleteNamespace(namespace));
  await createPullSecret(namespace, "regcred");
  return { c, namespace, image };
}

/**
 * One release in the prepared namespace: the gateway pulls its image with `imagePullSecrets`, sandboxes pull
 * the private test image with `server.sandboxImagePullSecrets` (pull policy Always: the node's image cache
 * cannot stand in for the credentials). Resolves once the gateway pod is Ready.
 */
async function install(p: Prepared, extra: string[] = []): Promise<Installed> {
  const gateway = gatewayImage(p.c);
  must(
    run(testbedTool("TESTBED_HELM"), [
      "install",
      "openshell",
      CHART,
      "-n",
      p.namespace,
      "--kubeconfig",
      p.c.kubeconfigPath,
      "-f",
      path.join(CHART, "ci", "values-plaintext.yaml"),
      "--set",
      `image.repository=${gateway.repository}`,
      "--set",
      `image.tag=${gateway.tag}`,
      "--set",
      "imagePullSecrets[0].name=regcred",
      "--set",
      "server.sandboxImagePullSecrets[0].name=regcred",
      "--set",
      `server.sandboxImage=${p.image}`,
      "--set",
      "server.sandboxImagePullPolicy=Always",
      ...extra,
    ]),
    "helm install",
  );
  return { ...p, ...(await gatewayPod(p)) };
}

/** The gateway pod once Ready (a different pod than `previous`, when given) and its API origin. */
async function gatewayPod(p: Prepared, previous?: V1Pod): Promise<{ pod: V1Pod; origin: string }> {
  if (previous) {
    await waitFor(
      async () => {
        const pod = await p.c.core
          .readNamespacedPod({ name: "openshell-0", namespace: p.namespace })
          .catch(() => undefined);
        return pod?.metadata?.uid && pod.metadata.uid !== previous.metadata?.uid;
      },
      { timeoutMs: 120_000, description: "a new gateway pod" },
    );
  }
  const pod = await podReady(p.c, p.namespace, "openshell-0", 240_000);
  assert.ok(pod.status?.podIP, "gateway pod IP");
  return { pod, origin: `http://${pod.status.podIP}:8080` };
}

// the gateway image of this tree (built and pushed once), so no scenario's seconds include the build
before(async () => {
  gatewayImage(await requireCluster("full"));
});

function api(origin: string): Client<typeof OpenShell> {
  return createClient(OpenShell, createGrpcTransport({ baseUrl: origin }));
}

test("scenario 3: server.sandboxImagePullSecrets → `openshell sandbox create --image <private>` READY; exec prints ok", async (t) => {
  const gw = await install(await prepare(t, "accept-3"), ["--set", "persistence.enabled=false"]);
  const created = await cli(gw.origin, [
    "sandbox",
    "create",
    "--name",
    "s3",
    "--image",
    gw.image,
    "-o",
    "json",
  ]);
  assert.equal(created.code, 0, `create: ${created.stderr}`);
  const sandbox = JSON.parse(created.stdout) as { status?: { phase?: string } };
  assert.equal(sandbox.status?.phase, "SANDBOX_PHASE_READY", created.stdout);

  const exec = await cli(gw.origin, ["sandbox", "exec", "s3", "--", "echo", "ok"]);
  assert.equal(exec.code, 0, `exec: ${exec.stderr}`);
  assert.equal(exec.stdout, "ok\n");

  const deleted = await cli(gw.origin, ["sandbox", "delete", "s3"]);
  assert.equal(deleted.code, 0, `delete: ${deleted.stderr}`);
});

test("scenario 12: upstream's Python SDK (openshell 0.1.5) on the installed gateway: create from the private image, READY, exec, delete", async (t) => {
  const gw = await install(await prepare(t, "accept-12"), ["--set", "persistence.enabled=false"]);
  const result = await runSdkFlow({
    endpoint: `${gw.pod.status?.podIP}:8080`,
    image: gw.image,
    name: "sdk-installed",
  });
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  assert.deepEqual(result.steps.wait_ready, { phase: SandboxPhase.READY });
  assert.deepEqual(result.steps.exec, { exit_code: 0, stdout: "ok\n", stderr: "" });
  assert.equal(result.steps.get_after_delete, "NOT_FOUND");
  assert.match(result.stdout, /SDK-FLOW-OK 0\.1\.5/);
});

/**
 * A statically bound volume for the StatefulSet's claim `data-openshell-0` (the test bed has no dynamic
 * provisioner): a hostPath directory owned by the gateway's user, pre-bound to the claim by claimRef.
 */
async function hostPathVolume(t: TestContext, c: Cluster, namespace: string, storageClass: string) {
  const dir = path.join(TESTBED_STATE, "pv", namespace);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, 65532, 65532);
  const name = `${namespace}-data`;
  await c.core.createPersistentVolume({
    body: {
      metadata: { name, labels: { "openshell.ai/test": "chart" } },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: storageClass,
        hostPath: { path: dir, type: "Directory" },
        claimRef: { namespace, name: "data-openshell-0" },
      },
    },
  });
  t.after(async () => {
    await c.core.deletePersistentVolume({ name }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
}

const SANDBOXES = { group: "agents.x-k8s.io", version: "v1beta1", plural: "sandboxes" } as const;

test("scenario 13: the gateway pod is deleted while a sandbox is provisioning → after the restart it reaches READY, exactly once", async (t) => {
  // the database must outlive the pod: the chart's default StatefulSet claim, on a static volume
  const p = await prepare(t, "accept-13");
  const storageClass = `${p.namespace}-manual`;
  await hostPathVolume(t, p.c, p.namespace, storageClass);
  const gw = await install(p, [
    "--set",
    "persistence.enabled=true",
    "--set",
    `persistence.storageClass=${storageClass}`,
  ]);
  const objects = p.c.kc.makeApiClient(CustomObjectsApi);
  const sandboxObjects = async () =>
    (
      (await objects.listNamespacedCustomObject({ ...SANDBOXES, namespace: p.namespace })) as {
        items: {
          metadata: { name: string; uid: string };
          status?: { conditions?: { type: string; status: string }[] };
        }[];
      }
    ).items;

  const created = (await api(gw.origin).createSandbox({ name: "s13", workspaceScope: scope })).sandbox;
  const acknowledgedAt = Date.now();
  assert.ok(created?.metadata?.id, "the create was acknowledged with an id");
  // provisioning: the object exists and is not Ready yet when the gateway pod goes away
  const before = await sandboxObjects();
  assert.equal(before.length, 1);
  const readyBefore = before[0]?.status?.conditions?.find((x) => x.type === "Ready")?.status === "True";
  assert.equal(readyBefore, false, "the sandbox was still provisioning when the gateway pod was deleted");
  const killedAt = Date.now();
  await p.c.core.deleteNamespacedPod({ name: "openshell-0", namespace: p.namespace, gracePeriodSeconds: 0 });
  t.diagnostic(`gateway pod deleted ${killedAt - acknowledgedAt} ms after the create was acknowledged`);

  const restarted = await gatewayPod(p, gw.pod);
  t.diagnostic(`new gateway pod Ready ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the delete`);
  let sandbox: Sandbox | undefined;
  await waitFor(
    async () => {
      sandbox = (await api(restarted.origin).getSandbox({ name: "s13", workspaceScope: scope })).sandbox;
      return sandbox?.status?.phase === SandboxPhase.READY;
    },
    { timeoutMs: 180_000, description: `s13 READY (last phase ${sandbox?.status?.phase})` },
  );

  // exactly once: the same record, the same object, one pod, one entry in the list
  assert.equal(sandbox?.metadata?.id, created.metadata.id, "the record survived the restart");
  const after = await sandboxObjects();
  assert.deepEqual(
    after.map((o) => o.metadata.uid),
    before.map((o) => o.metadata.uid),
    "the Sandbox object was neither duplicated nor re-created",
  );
  const pods = await p.c.core.listNamespacedPod({ namespace: p.namespace, labelSelector: MANAGED });
  assert.equal(pods.items.length, 1, pods.items.map((x) => x.metadata?.name).join(", "));
  const listed = await api(restarted.origin).listSandboxes({ workspaceScope: scope });
  assert.deepEqual(
    listed.sandboxes.map((s) => s.metadata?.name),
    ["s13"],
  );
});
