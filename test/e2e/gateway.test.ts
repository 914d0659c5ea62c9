// The gateway with its real Kubernetes driver and real SQLite store on the `full` test bed: a private
// image pulled with a configured pull secret, the CLI and upstream's Python SDK driving it, both
// resource kinds, stop/start, and reconcile after a restart.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SandboxPhase } from "../../src/gen/openshell/v1/openshell_pb.js";
import { requireCluster, waitFor } from "../support/cluster.js";
import { cli, launch, setup } from "../support/gateway.js";
import { runSdkFlow } from "../support/sdk.js";

const scope = { selection: { case: "workspace" as const, value: "default" } };

for (const resource of ["agent-sandbox", "pod"] as const) {
  describe(`gateway on the real cluster (${resource})`, () => {
    test("CLI: create from the private registry → READY, exec, delete", async (t) => {
      const env = await setup(t, { sandboxResource: resource });
      const { url } = await launch(t, env);
      const started = Date.now();
      const created = await cli(url, [
        "sandbox",
        "create",
        "--name",
        "e2e",
        "--image",
        env.image,
        "--timeout",
        "3m",
        "--",
        "sh",
        "-c",
        "echo sandbox $OPENSHELL_SANDBOX started; exec sleep 3600",
      ]);
      assert.equal(created.code, 0, created.stderr);
      t.diagnostic(`create → READY took ${Date.now() - started} ms (${resource})`);
      assert.match(created.stdout, /^NAME\s+PHASE\s+IMAGE\s+AGE\ne2e\s+READY\s+/);
      assert.match(created.stderr, /sandbox\/e2e: (pulled image|starting)/);

      const logs = await cli(url, ["sandbox", "logs", "e2e"]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.equal(logs.stdout, "sandbox e2e started\n");

      const exec = await cli(url, [
        "sandbox",
        "exec",
        "e2e",
        "--",
        "sh",
        "-c",
        "echo ok; echo oops >&2; exit 4",
      ]);
      assert.equal(exec.code, 4);
      assert.equal(exec.stdout, "ok\n");
      assert.equal(exec.stderr, "oops\n");

      const deleted = await cli(url, ["sandbox", "delete", "e2e", "--wait"]);
      assert.equal(deleted.code, 0, deleted.stderr);
      const after = await cli(url, ["sandbox", "get", "e2e"]);
      assert.equal(after.code, 1);
      assert.match(after.stderr, /not found/);
    });
  });
}

describe("gateway on the real cluster: lifecycle", () => {
  test("upstream's Python SDK: create → wait ready → exec → delete", async (t) => {
    const env = await setup(t);
    const { gateway } = await launch(t, env);
    const result = await runSdkFlow({
      endpoint: `127.0.0.1:${gateway.port}`,
      image: env.image,
      name: "sdk-e2e",
    });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.deepEqual(result.steps.exec, { exit_code: 0, stdout: "ok\n", stderr: "" });
    assert.equal(result.steps.get_after_delete, "NOT_FOUND");
  });

  test("stop and start", async (t) => {
    const env = await setup(t);
    const { api } = await launch(t, env);
    await api.createSandbox({
      name: "cycle",
      workspaceScope: scope,
      spec: { template: { image: env.image } },
    });
    const phase = async () =>
      (await api.getSandbox({ name: "cycle", workspaceScope: scope })).sandbox!.status!.phase;
    await waitFor(async () => (await phase()) === SandboxPhase.READY, {
      timeoutMs: 180_000,
      description: "READY",
    });
    await api.stopSandbox({ name: "cycle", workspaceScope: scope });
    await waitFor(async () => (await phase()) === SandboxPhase.STOPPED, {
      timeoutMs: 120_000,
      description: "STOPPED",
    });
    await api.startSandbox({ name: "cycle", workspaceScope: scope });
    await waitFor(async () => (await phase()) === SandboxPhase.READY, {
      timeoutMs: 180_000,
      description: "READY again",
    });
  });

  test("after a gateway restart, reconcile re-creates an object deleted behind its back", async (t) => {
    const env = await setup(t, { reconcileIntervalSeconds: 1 });
    const first = await launch(t, env);
    await first.api.createSandbox({
      name: "survivor",
      workspaceScope: scope,
      spec: { template: { image: env.image } },
    });
    await first.gateway.close(1000);

    const cluster = await requireCluster("full");
    const { CustomObjectsApi } = await import("@kubernetes/client-node");
    const objects = cluster.kc.makeApiClient(CustomObjectsApi);
    await objects.deleteNamespacedCustomObject({
      group: "agents.x-k8s.io",
      version: "v1beta1",
      namespace: env.namespace,
      plural: "sandboxes",
      name: "survivor",
    });

    const second = await launch(t, env);
    await waitFor(
      async () =>
        (await second.api.getSandbox({ name: "survivor", workspaceScope: scope })).sandbox!.status!.phase ===
        SandboxPhase.READY,
      { timeoutMs: 180_000, description: "the re-created sandbox is READY" },
    );
    const list = await second.api.listSandboxes({ workspaceScope: scope });
    assert.deepEqual(
      list.sandboxes.map((s) => s.metadata!.name),
      ["survivor"],
      "exactly one record",
    );
  });
});
