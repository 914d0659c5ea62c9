// Secret hygiene on the real test bed: the private-registry flows run with a unique canary password
// (registry secret create and update through the API and the CLI, preflight and validation refusals,
// the registry probe and a kubelet pull with the wrong canary password, then a rotation to the real
// password and a sandbox that pulls). Afterwards every place the gateway writes to is searched for the
// canary and for the real password, in plain text and in every base64 alignment (so also inside a
// dockerconfigjson "auth" field and a Secret's base64 data): the gateway's debug log, every API response
// and error, CLI stdout and stderr, the Kubernetes events, Sandbox and Pod objects of the namespace,
// /metrics, and the gateway's database file. Zero hits; the amount searched is reported per source.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { create, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { GatewayConfig } from "../../src/config/settings.js";
import {
  CreateRegistrySecretResponseSchema,
  ListRegistrySecretsResponseSchema,
  RegistryService,
  SandboxExtService,
  UpdateRegistrySecretResponseSchema,
} from "../../src/gen/openshell/ext/v1/ext_pb.js";
import {
  CreateSandboxRequestSchema,
  OpenShell,
  SandboxPhase,
  SandboxResponseSchema,
} from "../../src/gen/openshell/v1/openshell_pb.js";
import { startGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import { KubernetesDriver } from "../../src/kubernetes/driver.js";
import { RegistrySecrets } from "../../src/kubernetes/registry-secrets.js";
import { pullSecretSource } from "../../src/kubernetes/secrets.js";
import { requireCluster, waitFor } from "../support/cluster.js";
import { cli, setup, type Env } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { capturingLogger } from "../support/logs.js";

const scope = { selection: { case: "workspace" as const, value: "default" } };

/**
 * Every way a secret can appear in text: as it is, and base64-encoded at each of the three byte
 * alignments (the characters fully determined by the secret's own bytes), which finds it inside any
 * longer base64 text such as base64("user:password") or a Secret's base64 .dockerconfigjson.
 */
function needles(secret: string): string[] {
  const forms = new Set([secret]);
  for (const encoding of ["base64", "base64url"] as const) {
    for (let pad = 0; pad < 3; pad++) {
      const total = pad + Buffer.byteLength(secret);
      const encoded = Buffer.concat([Buffer.alloc(pad), Buffer.from(secret)]).toString(encoding);
      const skip = [0, 2, 3][pad]!;
      forms.add(encoded.slice(skip, Math.floor(total / 3) * 4));
    }
  }
  return [...forms].filter((f) => f.length >= 8);
}

/** What one source produced: text lines searched for the needles. */
class Sources {
  private readonly texts = new Map<string, string[]>();
  add(source: string, text: string): void {
    const list = this.texts.get(source) ?? [];
    list.push(text);
    this.texts.set(source, list);
  }
  /** Asserts zero hits; returns lines and bytes searched per source. */
  sweep(secrets: Record<string, string>): Record<string, { lines: number; bytes: number; hits: number }> {
    const report: Record<string, { lines: number; bytes: number; hits: number }> = {};
    const hits: string[] = [];
    const all = Object.entries(secrets).flatMap(([label, s]) => needles(s).map((n) => [label, n] as const));
    for (const [source, texts] of this.texts) {
      const text = texts.join("\n");
      let count = 0;
      for (const [label, needle] of all) {
        let at = text.indexOf(needle);
        while (at >= 0) {
          count++;
          hits.push(
            `${source}: the ${label} (${needle === secrets[label] ? "plain" : "base64"}) near ${JSON.stringify(text.slice(Math.max(0, at - 60), at))}`,
          );
          at = text.indexOf(needle, at + 1);
        }
      }
      report[source] = { lines: text.split("\n").length, bytes: Buffer.byteLength(text), hits: count };
    }
    assert.deepEqual(hits, [], "no secret in any output");
    return report;
  }
}

async function startCapturing(
  t: TestContext,
  env: Env,
  overrides: Partial<GatewayConfig>,
  sources: Sources,
  label: string,
) {
  const log = capturingLogger("debug", (line) => sources.add("gateway log (pino, debug)", line));
  const config: GatewayConfig = {
    ...env.config,
    metricsPort: await freePort(),
    healthPort: await freePort(),
    ...overrides,
  };
  // Wired as serve() wires them: the driver and the pull-secret cache log into the same captured stream.
  const driver = new KubernetesDriver({ config, logger: log.child({ component: "kubernetes" }) });
  const secrets = pullSecretSource(
    driver.kc,
    driver.client,
    config.namespace,
    log.child({ component: "secrets" }),
  );
  const gateway = await startGateway(config, {
    store: openStore({ dbUrl: "", dataDir: env.dataDir }),
    driver,
    log,
    secrets,
    registrySecrets: new RegistrySecrets(driver.client),
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    const metrics = await fetch(`http://127.0.0.1:${gateway.metricsPort}/metrics`);
    sources.add("/metrics", `# ${label}\n${await metrics.text()}`);
    const ready = await fetch(`http://127.0.0.1:${gateway.healthPort}/readyz`);
    sources.add("/readyz", `# ${label}\n${await ready.text()}`);
    await gateway.close(2000);
    secrets.cache.stop();
  };
  t.after(close);
  const url = `http://127.0.0.1:${gateway.port}`;
  const transport = createGrpcTransport({ baseUrl: url });
  return {
    url,
    close,
    api: createClient(OpenShell, transport),
    ext: createClient(SandboxExtService, transport),
    registry: createClient(RegistryService, transport),
  };
}

test("a canary registry password never appears in logs, API responses, errors, events, objects, metrics, CLI output or the database", async (t) => {
  const cluster = await requireCluster("full");
  const canary = `canary-${randomBytes(12).toString("hex")}`;
  const realPassword = cluster.registry.password;
  const server = cluster.registry.host;
  const user = cluster.registry.user;
  assert.notEqual(canary, realPassword);
  const env = await setup(t, { imagePullSecrets: [], registrySecretManagement: true });
  const sources = new Sources();

  const response = <D extends DescMessage>(schema: D, message: MessageShape<D>) =>
    sources.add("API responses", toJsonString(schema, message));
  const refusal = async (what: string, call: Promise<unknown>): Promise<ConnectError> => {
    const err = await call.then(
      () => assert.fail(`${what}: expected a refusal`),
      (e: unknown) => ConnectError.from(e),
    );
    sources.add("API errors", `${what}: ${err.code} ${err.rawMessage} ${JSON.stringify(err.details)}`);
    sources.add("API errors", [...err.metadata.entries()].map(([k, v]) => `${k}: ${v}`).join("\n"));
    return err;
  };
  const run = async (args: string[], options: { stdin?: string } = {}, url: string) => {
    const r = await cli(url, args, options);
    sources.add("CLI stdout and stderr", `$ openshell ${args.join(" ")}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** `openshell registry secret create|update canary-cli` with the password on stdin. */
  const secretCli = (verb: "create" | "update", password: string, url: string) =>
    run(
      ["registry", "secret", verb, "canary-cli", "--server", server, "--username", user, "--password-stdin"],
      { stdin: `${password}\n` },
      url,
    );

  // ---- gateway A: registry probe on (wrong passwords are found before a pod exists) ----
  const a = await startCapturing(
    t,
    env,
    { registryProbe: true, registryProbeCaFile: cluster.registry.caPath },
    sources,
    "gateway A",
  );

  response(
    CreateRegistrySecretResponseSchema,
    await a.registry.createRegistrySecret({ name: "canary-api", server, username: user, password: canary }),
  );
  response(
    UpdateRegistrySecretResponseSchema,
    await a.registry.updateRegistrySecret({ name: "canary-api", server, username: user, password: canary }),
  );
  const created = await secretCli("create", canary, a.url);
  assert.equal(created.code, 0, created.stderr);
  const updated = await secretCli("update", canary, a.url);
  assert.equal(updated.code, 0, updated.stderr);
  response(ListRegistrySecretsResponseSchema, await a.registry.listRegistrySecrets({}));
  assert.equal((await run(["registry", "secret", "list", "-o", "json"], {}, a.url)).code, 0);

  // the Secret really holds the canary (so the sweep below looks for something that exists)
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const stored = await core.readNamespacedSecret({ name: "canary-api", namespace: env.namespace });
  const dockerconfig = Buffer.from(stored.data![".dockerconfigjson"]!, "base64").toString();
  assert.ok(dockerconfig.includes(canary), "the secret holds the canary");
  const realSecret = await core.readNamespacedSecret({ name: "regcred", namespace: env.namespace });
  const realDockerconfig = Buffer.from(realSecret.data![".dockerconfigjson"]!, "base64").toString();

  // validation refusals that carry the canary in the request
  for (const [what, req] of [
    ["bad username", { name: "bad", server, username: "has space", password: canary }],
    ["bad server", { name: "bad", server: "not a host!", username: user, password: canary }],
    ["bad name", { name: "Bad_Name", server, username: user, password: canary }],
    ["two-line password", { name: "bad", server, username: user, password: `${canary}\nsecond` }],
    ["existing name", { name: "canary-api", server, username: user, password: canary }],
  ] as const) {
    await refusal(`create registry secret: ${what}`, a.registry.createRegistrySecret(req));
  }
  await refusal(
    "update a secret that does not exist",
    a.registry.updateRegistrySecret({ name: "missing", server, username: user, password: canary }),
  );

  // preflight: the canary secret does not cover the public registry's image
  const noMatch = await refusal(
    "preflight: secret does not cover the registry",
    a.ext.createSandboxExt({
      request: create(CreateSandboxRequestSchema, {
        name: "no-match",
        workspaceScope: scope,
        spec: { template: { image: `${cluster.registry.publicHost}/openshell-test/none:v1` } },
      }),
      imagePullSecrets: ["canary-api"],
    }),
  );
  t.diagnostic(`preflight refusal: ${noMatch.rawMessage}`);
  // the registry probe with the wrong (canary) password: API and CLI
  const probe = await refusal(
    "registry probe with the canary password",
    a.ext.createSandboxExt({
      request: create(CreateSandboxRequestSchema, {
        name: "probe-fail",
        workspaceScope: scope,
        spec: { template: { image: env.image } },
      }),
      imagePullSecrets: ["canary-api"],
    }),
  );
  assert.match(probe.rawMessage, /ImagePullAuthFailed|unauthorized|authentication/i, probe.rawMessage);
  const probeCli = await run(
    [
      "sandbox",
      "create",
      "--name",
      "probe-cli",
      "--image",
      env.image,
      "--image-pull-secret",
      "canary-cli",
      "--detach",
    ],
    {},
    a.url,
  );
  assert.equal(probeCli.code, 1, probeCli.stderr);
  assert.match(probeCli.stderr, /ImagePullAuthFailed/);
  await run(["doctor"], {}, a.url);
  await a.close();

  // ---- gateway B: probe off, so the kubelet pulls with the canary password and fails ----
  const b = await startCapturing(
    t,
    env,
    { registryProbe: false, pullFailureGraceSeconds: 1 },
    sources,
    "gateway B",
  );
  const failing = await b.ext.createSandboxExt({
    request: create(CreateSandboxRequestSchema, {
      name: "pull-fail",
      workspaceScope: scope,
      spec: { template: { image: env.image } },
    }),
    imagePullSecrets: ["canary-api"],
  });
  response(SandboxResponseSchema, failing);
  const failed = await waitFor(
    async () => {
      const got = await b.api.getSandbox({ name: "pull-fail", workspaceScope: scope });
      return got.sandbox?.status?.phase === SandboxPhase.ERROR ? got : undefined;
    },
    { timeoutMs: 120_000, description: "the wrong-password pull to be classified" },
  );
  response(SandboxResponseSchema, failed);
  const failedCli = await run(["sandbox", "get", "pull-fail", "-o", "json"], {}, b.url);
  assert.match(failedCli.stdout, /ImagePullAuthFailed|ErrImagePull|ImagePullBackOff/);

  // rotate to the real password (CLI, stdin) and pull for real
  const rotated = await secretCli("update", realPassword, b.url);
  assert.equal(rotated.code, 0, rotated.stderr);
  await new Promise((r) => setTimeout(r, 1000)); // the gateway's watch cache sees the new data
  const ready = await run(
    [
      "sandbox",
      "create",
      "--name",
      "pulls",
      "--image",
      env.image,
      "--image-pull-secret",
      "canary-cli",
      "--timeout",
      "3m",
    ],
    {},
    b.url,
  );
  assert.equal(ready.code, 0, ready.stderr);
  assert.match(ready.stdout, /pulls\s+READY/);
  const detail = await run(["sandbox", "get", "pulls", "-o", "yaml"], {}, b.url);
  assert.equal(detail.code, 0, detail.stderr);

  // ---- collect what Kubernetes holds that we wrote, then the database ----
  const events = await core.listNamespacedEvent({ namespace: env.namespace });
  for (const e of events.items) sources.add("Kubernetes events", JSON.stringify(e));
  assert.ok(
    events.items.some((e) => /ErrImagePull|Failed/.test(`${e.reason} ${e.message}`)),
    "the wrong-password pull left events to search",
  );
  const pods = await core.listNamespacedPod({ namespace: env.namespace });
  for (const p of pods.items) sources.add("Sandbox and Pod objects", JSON.stringify(p));
  const crs = (await cluster.kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: "agents.x-k8s.io",
    version: "v1beta1",
    namespace: env.namespace,
    plural: "sandboxes",
  })) as { items: unknown[] };
  for (const s of crs.items) sources.add("Sandbox and Pod objects", JSON.stringify(s));
  await b.close();
  for (const file of readdirSync(env.dataDir)) {
    sources.add("gateway database files", readFileSync(join(env.dataDir, file)).toString("latin1"));
  }

  const report = sources.sweep({
    "canary password": canary,
    "canary dockerconfigjson": dockerconfig,
    "canary Secret data": stored.data![".dockerconfigjson"]!,
    "real password": realPassword,
    "real dockerconfigjson": realDockerconfig,
  });
  for (const [source, r] of Object.entries(report)) {
    t.diagnostic(`${source}: ${r.lines} lines, ${r.bytes} bytes searched, ${r.hits} hits`);
  }
  console.log(`secret hygiene sweep: ${JSON.stringify(report)}`);
  for (const source of [
    "gateway log (pino, debug)",
    "API responses",
    "API errors",
    "CLI stdout and stderr",
    "Kubernetes events",
    "Sandbox and Pod objects",
    "/metrics",
    "gateway database files",
  ]) {
    assert.ok((report[source]?.bytes ?? 0) > 0, `${source} was searched`);
  }
});
