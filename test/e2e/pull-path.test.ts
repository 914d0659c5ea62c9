// Private-registry paths on the real cluster: preflight before anything exists, the registry probe,
// kubelet failures classified into the sandbox status, per-sandbox and service-account secrets.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { CreateSandboxExtRequestSchema } from "../../src/gen/openshell/ext/v1/ext_pb.js";
import { SandboxPhase, type Sandbox } from "../../src/gen/openshell/v1/openshell_pb.js";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { createPullSecret, requireCluster, waitFor, withNamespace } from "../support/cluster.js";
import { cli, launch, setup } from "../support/gateway.js";
import { rpcError } from "../support/rpc.js";

const scope = { selection: { case: "workspace" as const, value: "default" } };

function reasonOf(err: ConnectError): string | undefined {
  return err.findDetails(ErrorInfoSchema)[0]?.reason;
}

async function sandboxObjects(namespace: string): Promise<number> {
  const cluster = await requireCluster("full");
  const objects = cluster.kc.makeApiClient(CustomObjectsApi);
  const list = (await objects.listNamespacedCustomObject({
    group: "agents.x-k8s.io",
    version: "v1beta1",
    namespace,
    plural: "sandboxes",
  })) as { items: unknown[] };
  return list.items.length;
}

describe("preflight on the real cluster", () => {
  test("scenario 6: a missing secret fails at once with PullSecretMissing and the fix; nothing is created", async (t) => {
    const env = await setup(t, { imagePullSecrets: ["does-not-exist"] });
    const { api } = await launch(t, env);
    const started = Date.now();
    const err = await rpcError(
      api.createSandbox({ name: "nope", workspaceScope: scope, spec: { template: { image: env.image } } }),
    );
    t.diagnostic(`refused in ${Date.now() - started} ms`);
    assert.equal(err.code, Code.FailedPrecondition);
    assert.equal(reasonOf(err), "PullSecretMissing");
    assert.match(err.rawMessage, /pull secret "does-not-exist" does not exist in namespace "e2e-[0-9a-f]+"/);
    assert.match(err.rawMessage, /fix: create it with 'openshell registry secret create does-not-exist/);
    assert.equal(await sandboxObjects(env.namespace), 0);
    assert.equal(
      (await rpcError(api.getSandbox({ name: "nope", workspaceScope: scope }))).code,
      Code.NotFound,
    );
  });

  test("scenario 9: a secret in another namespace: the error names both namespaces", async (t) => {
    const env = await setup(t, { imagePullSecrets: [] });
    const other = await withNamespace(t, "elsewhere");
    await createPullSecret(other, "team-cred");
    const { ext } = await launch(t, env);
    const err = await rpcError(
      ext.createSandboxExt(
        create(CreateSandboxExtRequestSchema, {
          request: { name: "cross", workspaceScope: scope, spec: { template: { image: env.image } } },
          imagePullSecrets: ["team-cred"],
        }),
      ),
    );
    assert.equal(reasonOf(err), "PullSecretMissing");
    assert.match(
      err.rawMessage,
      new RegExp(`does not exist in namespace "${env.namespace}" \\(it exists in namespace "${other}"`),
    );
  });

  test("an Opaque secret with the right key is reported as PullSecretWrongType", async (t) => {
    const env = await setup(t, { imagePullSecrets: ["opaque-cred"] });
    const cluster = await requireCluster("full");
    await cluster.kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: env.namespace,
      body: {
        metadata: { name: "opaque-cred" },
        type: "Opaque",
        data: { ".dockerconfigjson": Buffer.from("{}").toString("base64") },
      },
    });
    const { api } = await launch(t, env);
    const err = await rpcError(
      api.createSandbox({ name: "opaque", workspaceScope: scope, spec: { template: { image: env.image } } }),
    );
    assert.equal(reasonOf(err), "PullSecretWrongType");
  });

  test("scenarios 7, 8: with the registry probe: a wrong password is ImagePullAuthFailed, an unknown tag ImageNotFound, before any pod exists", async (t) => {
    const cluster = await requireCluster("full");
    const env = await setup(t, {
      imagePullSecrets: ["bad-cred"],
      registryProbe: true,
      registryProbeCaFile: cluster.registry.caPath,
    });
    await createPullSecret(env.namespace, "bad-cred", {
      server: cluster.registry.host,
      user: cluster.registry.user,
      password: "wrong-password-canary",
    });
    const { api } = await launch(t, env);
    const err = await rpcError(
      api.createSandbox({ name: "probed", workspaceScope: scope, spec: { template: { image: env.image } } }),
    );
    assert.equal(reasonOf(err), "ImagePullAuthFailed");
    assert.doesNotMatch(err.rawMessage, /wrong-password-canary/);
    assert.equal(await sandboxObjects(env.namespace), 0);

    // With the right password, the probe reaches the manifest question.
    const core = cluster.kc.makeApiClient(CoreV1Api);
    await core.deleteNamespacedSecret({ name: "bad-cred", namespace: env.namespace });
    await createPullSecret(env.namespace, "bad-cred");
    await new Promise((r) => setTimeout(r, 1000)); // the watch cache sees the new secret
    const missingTag = await rpcError(
      api.createSandbox({
        name: "probed2",
        workspaceScope: scope,
        spec: { template: { image: env.image.replace(/:v1$/, ":no-such-tag") } },
      }),
    );
    assert.equal(reasonOf(missingTag), "ImageNotFound");
  });
});

describe("kubelet failures in the sandbox status", () => {
  for (const [scenario, label, password, tag, reason] of [
    [7, "wrong password", "wrong-password-canary", "v1", "ImagePullAuthFailed"],
    [8, "unknown tag", undefined, "no-such-tag", "ImageNotFound"],
  ] as const) {
    test(`scenario ${scenario}: ${label} with preflight off → ERROR ${reason} from the kubelet's failure`, async (t) => {
      const cluster = await requireCluster("full");
      const env = await setup(t, {
        imagePullSecrets: ["cred"],
        pullSecretPreflight: "off",
        pullFailureGraceSeconds: 3,
        // Always: with IfNotPresent a node that already has the image would never ask the registry.
        imagePullPolicy: "Always",
      });
      await createPullSecret(env.namespace, "cred", {
        server: cluster.registry.host,
        user: cluster.registry.user,
        password: password ?? cluster.registry.password,
      });
      const { api } = await launch(t, env);
      const image = env.image.replace(/:v1$/, `:${tag}`);
      await api.createSandbox({ name: "fails", workspaceScope: scope, spec: { template: { image } } });
      const started = Date.now();
      let sandbox: Sandbox | undefined;
      await waitFor(
        async () => {
          sandbox = (await api.getSandbox({ name: "fails", workspaceScope: scope })).sandbox!;
          return sandbox.status!.phase === SandboxPhase.ERROR;
        },
        { timeoutMs: 120_000, description: `ERROR ${reason}` },
      );
      t.diagnostic(`ERROR after ${Date.now() - started} ms`);
      const ready = sandbox!.status!.conditions.find(
        (c) => c.type === "Ready" && c.status === "False" && c.reason === reason,
      );
      assert.ok(
        ready,
        sandbox!.status!.conditions.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`).join("\n"),
      );
      assert.match(ready.message, /fix: /);
      assert.doesNotMatch(ready.message, /wrong-password-canary/);
    });
  }
});

describe("pull secrets at three levels", () => {
  test("scenario 4: no configured secret, a per-sandbox secret only → READY", async (t) => {
    const env = await setup(t, { imagePullSecrets: [] });
    const { ext, api } = await launch(t, env);
    await ext.createSandboxExt(
      create(CreateSandboxExtRequestSchema, {
        request: { name: "mine", workspaceScope: scope, spec: { template: { image: env.image } } },
        imagePullSecrets: ["regcred"],
      }),
    );
    await waitFor(
      async () =>
        (await api.getSandbox({ name: "mine", workspaceScope: scope })).sandbox!.status!.phase ===
        SandboxPhase.READY,
      {
        timeoutMs: 180_000,
        description: "READY",
      },
    );
  });

  test("scenario 5: service-account merging: the SA's secret is merged with a different per-sandbox secret → READY", async (t) => {
    const cluster = await requireCluster("full");
    const env = await setup(t, {
      imagePullSecrets: [],
      mergeServiceAccountPullSecrets: true,
      serviceAccountName: "sandboxes",
    });
    const core = cluster.kc.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({
      namespace: env.namespace,
      body: { metadata: { name: "sandboxes" }, imagePullSecrets: [{ name: "regcred" }] },
    });
    await createPullSecret(env.namespace, "other-cred", {
      server: "registry.example.invalid",
      user: "u",
      password: "p",
    });
    const { ext, api } = await launch(t, env);
    await ext.createSandboxExt(
      create(CreateSandboxExtRequestSchema, {
        request: { name: "merged", workspaceScope: scope, spec: { template: { image: env.image } } },
        imagePullSecrets: ["other-cred"],
      }),
    );
    const detail = await ext.getSandboxDetail({ name: "merged", workspaceScope: scope });
    assert.deepEqual(detail.imagePullSecrets, ["regcred", "other-cred"]);
    await waitFor(
      async () =>
        (await api.getSandbox({ name: "merged", workspaceScope: scope })).sandbox!.status!.phase ===
        SandboxPhase.READY,
      {
        timeoutMs: 180_000,
        description: "READY",
      },
    );
  });
});

describe("openshell doctor on the real cluster", () => {
  test("a configured secret that does not exist: ✗ PullSecretMissing with the fix, exit 1", async (t) => {
    const env = await setup(t, {
      imagePullSecrets: ["regcred", "gone"],
      defaultImage: "127.0.0.1:5443/openshell-test/e2e:v1",
    });
    const { url } = await launch(t, env);
    const result = await cli(url, ["doctor", "--no-color"]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^✓ gateway: http:\/\/127\.0\.0\.1:\d+ answered in \d+ ms: healthy/m);
    assert.match(
      result.stdout,
      /^✓ driver: kubernetes: sandboxes as agent-sandbox\/v1beta1 in namespace e2e-/m,
    );
    assert.match(result.stdout, /^✗ pull path: pull secrets: regcred, gone; preflight enforce$/m);
    assert.match(
      result.stdout,
      /^✗ PullSecretMissing: pull secret "gone" does not exist in namespace "e2e-[0-9a-f]+"\n {4}fix: create it with/m,
    );
  });

  test("a healthy configuration: all checks pass, exit 0", async (t) => {
    const env = await setup(t, { defaultImage: "127.0.0.1:5443/openshell-test/e2e:v1" });
    const { url } = await launch(t, env);
    const result = await cli(url, ["doctor", "-o", "json"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { ok: boolean; check: string }[] };
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.checks.map((c) => c.check),
      ["client", "gateway", "driver", "default image", "pull path"],
    );
  });
});

describe("registry mirrors on the real cluster", () => {
  test("scenario 11: a mirror rule rewrites a Docker Hub reference to the private registry → READY, both references shown", async (t) => {
    const cluster = await requireCluster("full");
    const env = await setup(t, {
      registryMirrors: { "docker.io/library": `${cluster.registry.host}/openshell-test` },
    });
    const { api, ext } = await launch(t, env);
    await api.createSandbox({
      name: "mirrored",
      workspaceScope: scope,
      spec: { template: { image: "e2e:v1" } },
    });
    await waitFor(
      async () =>
        (await api.getSandbox({ name: "mirrored", workspaceScope: scope })).sandbox!.status!.phase ===
        SandboxPhase.READY,
      {
        timeoutMs: 180_000,
        description: "READY through the mirror",
      },
    );
    const detail = await ext.getSandboxDetail({ name: "mirrored", workspaceScope: scope });
    assert.equal(detail.requestedImage, "e2e:v1");
    assert.equal(detail.effectiveImage, `${cluster.registry.host}/openshell-test/e2e:v1`);
    const pod = await cluster.kc
      .makeApiClient(CoreV1Api)
      .readNamespacedPod({ name: "mirrored", namespace: env.namespace });
    assert.equal(pod.spec!.containers[0]!.image, `${cluster.registry.host}/openshell-test/e2e:v1`);
  });
});
