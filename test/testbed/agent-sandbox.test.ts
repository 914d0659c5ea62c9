// Tier full: the agent-sandbox controller (running as a process against the cluster) turns a
// Sandbox into a running pod that carries the pod-level imagePullSecrets of the Sandbox's
// podTemplate, and the image comes from the authenticated private registry.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { KubernetesObject, V1Condition, V1Pod } from "@kubernetes/client-node";

import {
  createPullSecret,
  pushTestImage,
  requireCluster,
  serverSideApply,
  waitFor,
  waitForPodRunning,
  withNamespace,
} from "../support/cluster.js";

interface Sandbox extends KubernetesObject {
  spec: { podTemplate: { metadata?: { labels?: Record<string, string> }; spec: V1Pod["spec"] } };
  status?: { conditions?: V1Condition[] };
}

test("tier full: agent-sandbox controller runs a Sandbox with a pod-level pull secret", async (t) => {
  const c = await requireCluster("full");
  const ns = await withNamespace(t, "tb-sbx");
  const image = await pushTestImage("openshell-test/sandbox", "sandbox-test");
  await createPullSecret(ns, "openshell-registry-0");

  const labels = { "openshell.ai/managed-by": "openshell", "openshell.ai/sandbox-id": "sbx-e2e" };
  const sandbox: Sandbox = {
    apiVersion: "agents.x-k8s.io/v1beta1",
    kind: "Sandbox",
    metadata: { name: "sbx-e2e", namespace: ns, labels },
    spec: {
      podTemplate: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 1,
          imagePullSecrets: [{ name: "openshell-registry-0" }],
          containers: [{ name: "agent", image, imagePullPolicy: "Always" }],
        },
      },
    },
  };
  await serverSideApply(sandbox);

  const p = await waitForPodRunning(ns, "sbx-e2e", 120_000);
  assert.deepEqual(
    p.spec?.imagePullSecrets?.map((s) => s.name),
    ["openshell-registry-0"],
  );
  assert.equal(p.spec?.containers[0]?.name, "agent");
  assert.equal(p.spec?.containers[0]?.image, image);
  assert.equal(p.metadata?.labels?.["openshell.ai/managed-by"], "openshell");
  const owner = p.metadata?.ownerReferences?.find((o) => o.kind === "Sandbox");
  assert.equal(owner?.name, "sbx-e2e", JSON.stringify(p.metadata?.ownerReferences));

  const ready = await waitFor(
    async () => {
      const s = await c.objects.read<Sandbox>({
        apiVersion: "agents.x-k8s.io/v1beta1",
        kind: "Sandbox",
        metadata: { name: "sbx-e2e", namespace: ns },
      });
      return s.status?.conditions?.find((x) => x.type === "Ready" && x.status === "True") ? s : undefined;
    },
    { timeoutMs: 60_000, description: "Sandbox Ready condition" },
  );
  assert.ok(ready.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True"));
});
