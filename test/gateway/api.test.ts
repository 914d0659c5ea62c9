// The RPC layer end to end over real gRPC (HTTP/2), with a real SQLite store and an in-memory driver:
// the fast tier. The same calls run against the real cluster in test/testbed/ and test/interop/.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import { CreateSandboxExtRequestSchema, SandboxExtService } from "../../src/gen/openshell/ext/v1/ext_pb.js";
import {
  CreateSandboxRequestSchema,
  DeletionOutcome,
  OpenShell,
  SandboxPhase,
  ServiceStatus,
} from "../../src/gen/openshell/v1/openshell_pb.js";
import { startGateway, type RunningGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import type { SandboxObject } from "../../src/render/sandbox.js";
import { MemoryDriver } from "../support/memory-driver.js";
import { rpcError } from "../support/rpc.js";
import { capturingLogger } from "../support/logs.js";

const TOKEN = "t0ken-for-tests";
const scope = { selection: { case: "workspace" as const, value: "default" } };

interface Harness {
  gateway: RunningGateway;
  driver: MemoryDriver;
  api: Client<typeof OpenShell>;
  ext: Client<typeof SandboxExtService>;
  logs: string[];
  url: string;
}

async function startHarness(overrides: Partial<GatewayConfig> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "osgw-api-"));
  writeFileSync(join(dir, "token"), `${TOKEN}\n`);
  const config: GatewayConfig = {
    ...defaultConfig(),
    bindAddress: "127.0.0.1",
    port: 0,
    healthPort: 0,
    metricsPort: 0,
    disableTls: true,
    authTokenFile: join(dir, "token"),
    dataDir: dir,
    imagePullSecrets: ["global-cred"],
    ...overrides,
  };
  const logs: string[] = [];
  const log = capturingLogger("debug", (line) => logs.push(line));
  const driver = new MemoryDriver();
  const store = openStore({ dbUrl: "", dataDir: dir });
  const gateway = await startGateway(config, { store, driver, log });
  const url = `http://127.0.0.1:${gateway.port}`;
  const transport = createGrpcTransport({
    baseUrl: url,
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${TOKEN}`);
        return next(req);
      },
    ],
  });
  return {
    gateway,
    driver,
    api: createClient(OpenShell, transport),
    ext: createClient(SandboxExtService, transport),
    logs,
    url,
  };
}

describe("openshell.v1 over gRPC (fast tier)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.gateway.close(1000);
  });

  test("Health answers without a token", async () => {
    const anonymous = createClient(OpenShell, createGrpcTransport({ baseUrl: h.url }));
    const health = await anonymous.health({});
    assert.equal(health.status, ServiceStatus.HEALTHY);
    assert.match(health.version, /^\d+\.\d+\.\d+$/);
  });

  test("other calls need the token", async () => {
    const anonymous = createClient(OpenShell, createGrpcTransport({ baseUrl: h.url }));
    const err = await rpcError(anonymous.listSandboxes({ workspaceScope: scope }));
    assert.equal(err.code, Code.Unauthenticated);
    const wrong = createClient(
      OpenShell,
      createGrpcTransport({
        baseUrl: h.url,
        interceptors: [(next) => (req) => (req.header.set("authorization", "Bearer nope"), next(req))],
      }),
    );
    assert.equal((await rpcError(wrong.listSandboxes({ workspaceScope: scope }))).code, Code.Unauthenticated);
  });

  test("create → get → list → exec → delete", async () => {
    const created = await h.api.createSandbox(
      create(CreateSandboxRequestSchema, {
        name: "alpha",
        labels: { team: "ml" },
        workspaceScope: scope,
        spec: {
          template: { image: "127.0.0.1:5443/team/agent:v1" },
          environment: { A: "1" },
          command: ["sleep", "60"],
        },
      }),
    );
    const sandbox = created.sandbox!;
    assert.match(sandbox.metadata!.id, /^[0-9a-f-]{36}$/);
    assert.equal(sandbox.metadata!.name, "alpha");
    assert.equal(sandbox.status!.phase, SandboxPhase.PROVISIONING);
    assert.equal(sandbox.status!.exitCode, undefined, "exit_code stays unset until the process exits");

    const object = h.driver.objects.get("alpha")!.object as SandboxObject;
    assert.deepEqual(object.spec.podTemplate.spec.imagePullSecrets, [{ name: "global-cred" }]);
    assert.deepEqual(object.spec.podTemplate.spec.containers[0]!.command, ["sleep", "60"]);

    h.driver.setPhase("alpha", "READY");
    const got = await h.api.getSandbox({ name: "alpha", workspaceScope: scope });
    assert.equal(got.sandbox!.status!.phase, SandboxPhase.READY);

    const list = await h.api.listSandboxes({ workspaceScope: scope, labelSelector: "team=ml", pageSize: 10 });
    assert.deepEqual(
      list.sandboxes.map((s) => s.metadata!.name),
      ["alpha"],
    );
    assert.equal(
      (await h.api.listSandboxes({ workspaceScope: scope, labelSelector: "team=other" })).sandboxes.length,
      0,
    );

    const chunks: string[] = [];
    let exit: number | undefined;
    for await (const event of h.api.execSandbox({
      sandbox: "alpha",
      workspaceScope: scope,
      command: ["echo", "ok"],
    })) {
      if (event.payload.case === "stdout") chunks.push(Buffer.from(event.payload.value.data).toString());
      if (event.payload.case === "exit") exit = event.payload.value.exitCode;
    }
    assert.equal(chunks.join(""), "ok\n");
    assert.equal(exit, 0);

    const deleted = await h.api.deleteSandbox({ name: "alpha", workspaceScope: scope });
    assert.equal(deleted.outcome, DeletionOutcome.ACCEPTED);
    assert.equal(deleted.sandboxId, sandbox.metadata!.id);
    assert.equal(
      (await h.api.getSandbox({ name: "alpha", workspaceScope: scope })).sandbox!.status!.phase,
      SandboxPhase.DELETING,
    );
    h.driver.vanish("alpha");
    await waitFor(
      async () =>
        (await rpcError(h.api.getSandbox({ name: "alpha", workspaceScope: scope }))).code === Code.NotFound,
    );
    const again = await h.api.deleteSandbox({ name: "alpha", workspaceScope: scope, allowMissing: true });
    assert.equal(again.outcome, DeletionOutcome.ALREADY_ABSENT);
  });

  test("a taken name is ALREADY_EXISTS; another workspace may reuse it", async () => {
    await h.api.createSandbox({ name: "dup", workspaceScope: scope, spec: {} });
    const err = await rpcError(h.api.createSandbox({ name: "dup", workspaceScope: scope, spec: {} }));
    assert.equal(err.code, Code.AlreadyExists);
    assert.match(err.rawMessage, /sandbox "dup" already exists in workspace "default"/);
    const other = await h.api.createSandbox({
      name: "dup",
      workspaceScope: { selection: { case: "workspace", value: "team-b" } },
      spec: {},
    });
    assert.equal(other.sandbox!.metadata!.workspace, "team-b");
    assert.ok(h.driver.objects.has("team-b--dup"));
  });

  test("an empty name is generated; the default image fills an empty spec", async () => {
    const res = await h.api.createSandbox({ workspaceScope: scope, spec: {} });
    const name = res.sandbox!.metadata!.name;
    assert.match(name, /^sandbox-[0-9a-f]{10}$/);
    const object = h.driver.objects.get(name)!.object as SandboxObject;
    assert.equal(object.spec.podTemplate.spec.containers[0]!.image, defaultConfig().defaultImage);
  });

  test("a failed Kubernetes create leaves no record behind", async () => {
    const { KubernetesError } = await import("../../src/kubernetes/types.js");
    h.driver.failNextCreate = new KubernetesError("admission webhook denied the request", "Invalid", 422);
    const err = await rpcError(h.api.createSandbox({ name: "doomed", workspaceScope: scope, spec: {} }));
    assert.equal(err.code, Code.InvalidArgument);
    assert.match(err.rawMessage, /create sandbox "doomed": admission webhook denied the request/);
    assert.equal(
      (await rpcError(h.api.getSandbox({ name: "doomed", workspaceScope: scope }))).code,
      Code.NotFound,
    );
  });

  test("invalid fields are INVALID_ARGUMENT naming the field; unsupported ones UNIMPLEMENTED", async () => {
    const cases: [Parameters<typeof h.api.createSandbox>[0], Code, RegExp][] = [
      [
        { name: "Bad_Name", workspaceScope: scope, spec: {} },
        Code.InvalidArgument,
        /invalid name: "Bad_Name" must be a DNS-1035 label/,
      ],
      [
        { name: "x", workspaceScope: scope, spec: { template: { image: "UPPER/case" } } },
        Code.InvalidArgument,
        /invalid image/,
      ],
      [
        { name: "x", workspaceScope: scope, spec: { environment: { "1X": "y" } } },
        Code.InvalidArgument,
        /environment key: "1X"/,
      ],
      [
        {
          name: "x",
          workspaceScope: scope,
          spec: { template: { resources: { limits: { "nvidia.com/gpu": "1" } } } },
        },
        Code.InvalidArgument,
        /resource_requirements.gpu.count/,
      ],
      [
        { name: "x", workspaceScope: scope, spec: { providers: ["github"] } },
        Code.Unimplemented,
        /unsupported field spec.providers/,
      ],
      [{ name: "x", workspaceScope: scope, spec: { tty: true } }, Code.Unimplemented, /spec.tty/],
      [{ name: "x", workspaceScope: scope, serviceExposures: [{}] }, Code.Unimplemented, /service_exposures/],
    ];
    for (const [request, code, pattern] of cases) {
      const err = await rpcError(h.api.createSandbox(request));
      assert.equal(err.code, code, `${pattern}: ${err.message}`);
      assert.match(err.rawMessage, pattern);
    }
  });

  test("per-sandbox pull secrets through the extension service, merged after the configured ones", async () => {
    await h.ext.createSandboxExt(
      create(CreateSandboxExtRequestSchema, {
        request: {
          name: "private",
          workspaceScope: scope,
          spec: { template: { image: "127.0.0.1:5443/a:1" } },
        },
        imagePullSecrets: ["mine", "global-cred"],
      }),
    );
    const object = h.driver.objects.get("private")!.object as SandboxObject;
    assert.deepEqual(object.spec.podTemplate.spec.imagePullSecrets, [
      { name: "global-cred" },
      { name: "mine" },
    ]);
    const detail = await h.ext.getSandboxDetail({ name: "private", workspaceScope: scope });
    assert.deepEqual(detail.imagePullSecrets, ["global-cred", "mine"]);
    assert.equal(detail.effectiveImage, "127.0.0.1:5443/a:1");
  });

  test("WatchSandbox streams status changes and stops at a terminal phase", async () => {
    await h.api.createSandbox({ name: "watched", workspaceScope: scope, spec: {} });
    const phases: SandboxPhase[] = [];
    const stream = h.api.watchSandbox({
      sandbox: "watched",
      workspaceScope: scope,
      followStatus: true,
      stopOnTerminal: true,
    });
    const done = (async () => {
      for await (const event of stream)
        if (event.payload.case === "sandbox") phases.push(event.payload.value.status!.phase);
    })();
    await waitFor(() => Promise.resolve(phases.length >= 1));
    h.driver.setPhase("watched", "READY");
    await done;
    assert.deepEqual(phases, [SandboxPhase.PROVISIONING, SandboxPhase.READY]);
  });

  test("exec before READY is FAILED_PRECONDITION with the fix", async () => {
    await h.api.createSandbox({ name: "notyet", workspaceScope: scope, spec: {} });
    const err = await rpcError(
      (async () => {
        for await (const _ of h.api.execSandbox({
          sandbox: "notyet",
          workspaceScope: scope,
          command: ["true"],
        }))
          void _;
      })(),
    );
    assert.equal(err.code, Code.FailedPrecondition);
    assert.match(err.rawMessage, /is PROVISIONING, not READY/);
  });

  test("reconcile re-creates a missing object and deletes an orphan", async () => {
    await h.api.createSandbox({ name: "lost", workspaceScope: scope, spec: {} });
    h.driver.objects.delete("lost");
    h.driver.objects.set("orphan", {
      object: { apiVersion: "v1", kind: "Pod", metadata: { name: "orphan" } },
      observed: {
        ...h.driver.observed("dup")!,
        sandboxId: "00000000-0000-4000-8000-000000000000",
        objectName: "orphan",
      },
    });
    const counts = await h.gateway.sandboxes.reconcile(0);
    assert.equal(counts.recreated, 1);
    assert.equal(counts.orphans, 1);
    assert.ok(h.driver.objects.has("lost"));
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail("condition not met in time");
}
