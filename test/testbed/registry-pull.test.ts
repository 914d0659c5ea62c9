// Tier full: a pod whose image is in the authenticated private registry runs with the right
// imagePullSecrets, and stays in ErrImagePull/ImagePullBackOff without a secret and with wrong
// credentials. Real kubelet + containerd pulling from docker-registry over TLS on loopback.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { V1Pod } from "@kubernetes/client-node";

import {
  createPullSecret,
  eventsFor,
  getPod,
  pushTestImage,
  requireCluster,
  waitForContainerWaiting,
  waitForPodRunning,
  withNamespace,
} from "../support/cluster.js";

function pod(ns: string, name: string, image: string, pullSecret?: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels: { "openshell.ai/managed-by": "openshell" } },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(pullSecret ? { imagePullSecrets: [{ name: pullSecret }] } : {}),
      containers: [{ name: "agent", image, imagePullPolicy: "Always" }],
    },
  };
}

const PULL_FAILED = ["ErrImagePull", "ImagePullBackOff"];

test("tier full: image pulls from the authenticated registry", async (t) => {
  const c = await requireCluster("full");
  const ns = await withNamespace(t, "tb-pull");
  const image = await pushTestImage("openshell-test/sandbox", "pull-test");
  assert.equal(image, `${c.registry.host}/openshell-test/sandbox:pull-test`);

  await createPullSecret(ns, "good-creds");
  await createPullSecret(ns, "wrong-creds", {
    server: c.registry.host,
    user: c.registry.user,
    password: "not-the-password",
  });

  // create all three up front so the pulls run in parallel
  await c.core.createNamespacedPod({ namespace: ns, body: pod(ns, "with-secret", image, "good-creds") });
  await c.core.createNamespacedPod({ namespace: ns, body: pod(ns, "no-secret", image) });
  await c.core.createNamespacedPod({ namespace: ns, body: pod(ns, "wrong-secret", image, "wrong-creds") });

  await t.test("with the right imagePullSecrets the pod becomes Running", async () => {
    const p = await waitForPodRunning(ns, "with-secret");
    assert.deepEqual(
      p.spec?.imagePullSecrets?.map((s) => s.name),
      ["good-creds"],
    );
    const st = p.status?.containerStatuses?.[0];
    assert.equal(st?.name, "agent");
    assert.ok(st?.state?.running, JSON.stringify(st?.state));
    assert.match(st?.imageID ?? "", /^127\.0\.0\.1:\d+\/openshell-test\/sandbox@sha256:[0-9a-f]{64}$/);
  });

  await t.test("without a pull secret the pod stays in ErrImagePull/ImagePullBackOff", async () => {
    const w = await waitForContainerWaiting(ns, "no-secret", PULL_FAILED);
    assert.match(w.message, /401 Unauthorized|authorization failed|no basic auth credentials/i, w.message);
    // still failing later: it never starts without credentials
    await new Promise((r) => setTimeout(r, 3000));
    const again = await getPod(ns, "no-secret");
    assert.ok(PULL_FAILED.includes(again?.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? ""));
    assert.notEqual(again?.status?.phase, "Running");
  });

  await t.test("with wrong credentials the pod stays in ErrImagePull/ImagePullBackOff", async () => {
    const w = await waitForContainerWaiting(ns, "wrong-secret", PULL_FAILED);
    assert.match(w.message, /401 Unauthorized|authorization failed/i, w.message);
    const ev = await eventsFor(ns, "wrong-secret");
    assert.ok(
      ev.some((e) => e.startsWith("Failed:")),
      ev.join(" | "),
    );
    const again = await getPod(ns, "wrong-secret");
    assert.notEqual(again?.status?.phase, "Running");
  });
});
