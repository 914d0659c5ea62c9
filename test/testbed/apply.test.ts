// Tier api: server-side apply of the objects the renderer makes (Pod, agent-sandbox Sandbox
// v1beta1) is accepted by a real kube-apiserver with the agent-sandbox CRDs, and invalid objects
// are rejected with the API server's validation error.
//
// The sample objects are written inline for now; they follow the renderer's shape (container
// `agent`, imagePullSecrets, label openshell.ai/managed-by=openshell).

import assert from "node:assert/strict";
import { test } from "node:test";

import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";

import { apiErrorStatus, requireCluster, serverSideApply, withNamespace } from "../support/cluster.js";

const LABELS = { "openshell.ai/managed-by": "openshell", "openshell.ai/sandbox-id": "sbx-0001" };

function samplePod(ns: string, name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels: { ...LABELS } },
    spec: {
      imagePullSecrets: [{ name: "openshell-registry-0" }],
      containers: [
        {
          name: "agent",
          image: "127.0.0.1:5443/openshell-test/sandbox:busybox",
          imagePullPolicy: "IfNotPresent",
          env: [{ name: "OPENSHELL_SANDBOX_ID", value: "sbx-0001" }],
        },
      ],
    },
  };
}

interface Sandbox extends KubernetesObject {
  spec: { podTemplate: { metadata?: { labels?: Record<string, string> }; spec: V1Pod["spec"] } };
}

function sampleSandbox(ns: string, name: string): Sandbox {
  const pod = samplePod(ns, name);
  return {
    apiVersion: "agents.x-k8s.io/v1beta1",
    kind: "Sandbox",
    metadata: { name, namespace: ns, labels: { ...LABELS } },
    spec: { podTemplate: { metadata: { labels: { ...LABELS } }, spec: pod.spec } },
  };
}

test("tier api: server-side apply of renderer-shaped objects", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "tb-apply");

  await t.test("Pod with container agent and imagePullSecrets is accepted", async () => {
    const applied = await serverSideApply(samplePod(ns, "agent-pod"));
    assert.equal(applied.metadata?.labels?.["openshell.ai/managed-by"], "openshell");
    const pod = await c.core.readNamespacedPod({ name: "agent-pod", namespace: ns });
    assert.deepEqual(
      pod.spec?.imagePullSecrets?.map((s) => s.name),
      ["openshell-registry-0"],
    );
    assert.equal(pod.spec?.containers[0]?.name, "agent");
    // ServiceAccount admission ran: default SA and its projected token volume were added
    assert.equal(pod.spec?.serviceAccountName, "default");
    assert.ok(pod.spec?.volumes?.some((v) => v.name.startsWith("kube-api-access-")));
    const fm = pod.metadata?.managedFields?.map((f) => `${f.manager}/${f.operation}`) ?? [];
    assert.ok(fm.includes("openshell-testbed-tests/Apply"), `managedFields: ${fm.join(",")}`);
    // re-applying the same object is a no-op, not a conflict
    await serverSideApply(samplePod(ns, "agent-pod"));
  });

  await t.test("Sandbox v1beta1 is accepted and readable as v1alpha1 (conversion webhook)", async () => {
    await serverSideApply(sampleSandbox(ns, "agent-sbx"));
    const got = await c.objects.read<Sandbox>({
      apiVersion: "agents.x-k8s.io/v1beta1",
      kind: "Sandbox",
      metadata: { name: "agent-sbx", namespace: ns },
    });
    assert.deepEqual(
      got.spec.podTemplate.spec?.imagePullSecrets?.map((s) => s.name),
      ["openshell-registry-0"],
    );
    assert.equal(got.spec.podTemplate.spec?.containers[0]?.name, "agent");
    const alpha = await c.objects.read<Sandbox>({
      apiVersion: "agents.x-k8s.io/v1alpha1",
      kind: "Sandbox",
      metadata: { name: "agent-sbx", namespace: ns },
    });
    assert.equal(alpha.apiVersion, "agents.x-k8s.io/v1alpha1");
    assert.deepEqual(
      alpha.spec.podTemplate.spec?.imagePullSecrets?.map((s) => s.name),
      ["openshell-registry-0"],
    );
  });

  await t.test("dry-run apply is accepted and stores nothing", async () => {
    await serverSideApply(sampleSandbox(ns, "dry-sbx"), { dryRun: true });
    await assert.rejects(
      c.objects.read({
        apiVersion: "agents.x-k8s.io/v1beta1",
        kind: "Sandbox",
        metadata: { name: "dry-sbx", namespace: ns },
      }),
      (err: unknown) => apiErrorStatus(err)?.code === 404,
    );
  });

  await t.test("invalid Pod (bad container name) is rejected as Invalid", async () => {
    const bad = samplePod(ns, "bad-pod");
    bad.spec!.containers[0]!.name = "Agent_1";
    await assert.rejects(serverSideApply(bad), (err: unknown) => {
      const s = apiErrorStatus(err);
      assert.equal(s?.code, 422, JSON.stringify(s));
      assert.equal(s?.reason, "Invalid");
      assert.match(s?.message ?? "", /spec\.containers\[0\]\.name: Invalid value: "Agent_1"/);
      return true;
    });
  });

  await t.test("invalid Sandbox (schema violation) is rejected as Invalid", async () => {
    const bad = sampleSandbox(ns, "bad-sbx") as unknown as {
      spec: Record<string, unknown>;
    } & KubernetesObject;
    bad.spec.operatingMode = "Sideways";
    await assert.rejects(serverSideApply(bad), (err: unknown) => {
      const s = apiErrorStatus(err);
      assert.equal(s?.code, 422, JSON.stringify(s));
      assert.equal(s?.reason, "Invalid");
      assert.match(s?.message ?? "", /spec\.operatingMode: Unsupported value: "Sideways"/);
      return true;
    });
  });

  await t.test("Sandbox without the required podTemplate is rejected", async () => {
    const bad = { ...sampleSandbox(ns, "empty-sbx"), spec: {} } as unknown as KubernetesObject;
    await assert.rejects(serverSideApply(bad), (err: unknown) => {
      const s = apiErrorStatus(err);
      assert.equal(s?.code, 422, JSON.stringify(s));
      assert.match(s?.message ?? "", /spec\.podTemplate: Required value/);
      return true;
    });
  });
});
