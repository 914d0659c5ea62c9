// Tier full: pod networking of the test bed. A pod reaches a ClusterIP Service backed by another
// pod on the same CNI bridge (kube-proxy nftables + br_netfilter), and reaches the API server
// through the `kubernetes` Service.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { V1Pod } from "@kubernetes/client-node";

import {
  createPullSecret,
  describePod,
  getPod,
  pushTestImage,
  requireCluster,
  waitFor,
  waitForPodRunning,
  withNamespace,
} from "../support/cluster.js";

function shPod(
  ns: string,
  name: string,
  image: string,
  script: string,
  labels: Record<string, string> = {},
): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      imagePullSecrets: [{ name: "pull" }],
      containers: [{ name: "agent", image, command: ["/bin/sh", "-c", script] }],
    },
  };
}

async function waitSucceeded(ns: string, name: string): Promise<string> {
  let last: V1Pod | undefined;
  const c = await requireCluster("full");
  try {
    await waitFor(
      async () => {
        last = await getPod(ns, name);
        const phase = last?.status?.phase;
        if (phase === "Failed") throw new Error("pod Failed");
        return phase === "Succeeded";
      },
      { timeoutMs: 90_000, description: `pod ${ns}/${name} Succeeded` },
    );
  } finally {
    // attach the logs to any failure
    const log = await c.core.readNamespacedPodLog({ name, namespace: ns }).catch(() => "");
    if (last?.status?.phase !== "Succeeded") {
      // eslint-disable-next-line no-unsafe-finally
      throw new Error(`pod ${name} did not succeed: ${describePod(last)}; log: ${log}`);
    }
  }
  return c.core.readNamespacedPodLog({ name, namespace: ns });
}

test("tier full: pods reach Services and the API server", async (t) => {
  const c = await requireCluster("full");
  const ns = await withNamespace(t, "tb-net");
  const image = await pushTestImage("openshell-test/sandbox", "net-test");
  await createPullSecret(ns, "pull");

  // server: answers every TCP connection on 8080 with "hello-from-server"
  const serverPod = shPod(ns, "server", image, "exec nc -ll -p 8080 -e /bin/echo hello-from-server", {
    app: "server",
  });
  serverPod.spec!.restartPolicy = "Always";
  serverPod.spec!.containers[0]!.ports = [{ containerPort: 8080 }];
  await c.core.createNamespacedPod({ namespace: ns, body: serverPod });
  const svc = await c.core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: "server" },
      spec: { selector: { app: "server" }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  const clusterIP = svc.spec?.clusterIP ?? "";
  assert.match(clusterIP, /^198\.19\.0\.\d+$/);
  const server = await waitForPodRunning(ns, "server");
  assert.match(server.status?.podIP ?? "", /^198\.18\.\d+\.\d+$/);

  await t.test("pod -> ClusterIP Service -> pod on the same bridge", async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: shPod(
        ns,
        "svc-client",
        image,
        `for i in $(seq 1 30); do out=$(nc -w 3 ${clusterIP} 80 </dev/null) && [ -n "$out" ] && echo "$out" && exit 0; sleep 1; done; exit 1`,
      ),
    });
    const log = await waitSucceeded(ns, "svc-client");
    assert.match(log, /hello-from-server/);
  });

  await t.test("pod -> kubernetes Service (198.19.0.1:443) -> API server", async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: shPod(
        ns,
        "api-client",
        image,
        'echo "host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT"; ' +
          "for i in $(seq 1 30); do nc -w 3 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT </dev/null && echo connected && exit 0; sleep 1; done; exit 1",
      ),
    });
    const log = await waitSucceeded(ns, "api-client");
    assert.match(log, /host=198\.19\.0\.1 port=443/);
    assert.match(log, /connected/);
  });
});
