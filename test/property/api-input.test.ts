// Bad input over every API request field, as property-based tests (fast-check): the in-process gateway
// over real gRPC with SQLite and the in-memory driver. Whatever a client sends, the answer is never a
// crash or a 500-class status (INTERNAL, UNKNOWN): valid input is served, invalid input is
// INVALID_ARGUMENT with one line naming the field, and a refused create leaves nothing behind.
// Runs are bounded (NUM_RUNS per property); on failure fast-check prints the seed and the counterexample.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { create, toJsonString, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import {
  CreateRegistrySecretResponseSchema,
  RegistryService,
  SandboxExtService,
  UpdateRegistrySecretResponseSchema,
  type CreateRegistrySecretRequest,
} from "../../src/gen/openshell/ext/v1/ext_pb.js";
import {
  CreateSandboxRequestSchema,
  OpenShell,
  ResourceRequirementsSchema,
  type CreateSandboxRequest,
} from "../../src/gen/openshell/v1/openshell_pb.js";
import { WorkspaceSelectorSchema } from "../../src/gen/openshell/datamodel/v1/datamodel_pb.js";
import { startGateway, type RunningGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import type { RegistryCredentialsInput, RegistrySecrets } from "../../src/kubernetes/registry-secrets.js";
import { MemoryDriver } from "../support/memory-driver.js";
import {
  badString,
  huge,
  isOneLine,
  jsonish,
  mapOf,
  nameLike,
  nameList,
  quantityLike,
} from "./arbitraries.js";
import { capturingLogger } from "../support/logs.js";

/** Per property; every run is one or two RPCs, so the whole file stays within a few seconds per property. */
const NUM_RUNS = 25;
const TOKEN = "property-token";
const WORKSPACE = { selection: { case: "workspace" as const, value: "default" } };
const ALL_WORKSPACES = { selection: { case: "allWorkspaces" as const, value: {} } };
/** A message is bounded, however large the input: values are shortened when described. */
const MAX_MESSAGE = 4096;

type Verdict = "valid" | "invalid" | "either";

interface Harness {
  gateway: RunningGateway;
  driver: MemoryDriver;
  api: Client<typeof OpenShell>;
  ext: Client<typeof SandboxExtService>;
  registry: Client<typeof RegistryService>;
  /** What reached the registry secret backend (the fake below). */
  written: RegistryCredentialsInput[];
  logs: string[];
}

/** A RegistrySecrets stand-in that records writes (the real one is tested on the cluster). */
function recordingSecrets(written: RegistryCredentialsInput[]): RegistrySecrets {
  const info = (input: RegistryCredentialsInput) => ({
    name: input.name,
    namespace: input.namespace,
    servers: [input.server],
    username: input.username,
    createdAtMs: Date.now(),
  });
  return {
    create: (input: RegistryCredentialsInput) => (written.push(input), Promise.resolve(info(input))),
    update: (input: RegistryCredentialsInput) => (written.push(input), Promise.resolve(info(input))),
    list: () => Promise.resolve([]),
    delete: () => Promise.resolve(false),
  } as unknown as RegistrySecrets;
}

async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "osgw-prop-"));
  writeFileSync(join(dir, "token"), `${TOKEN}\n`);
  const config: GatewayConfig = {
    ...defaultConfig(),
    bindAddress: "127.0.0.1",
    port: 0,
    disableTls: true,
    authTokenFile: join(dir, "token"),
    dataDir: dir,
    namespace: "agents",
    registrySecretManagement: true,
  };
  const logs: string[] = [];
  const log = capturingLogger("debug", (line) => logs.push(line));
  const driver = new MemoryDriver();
  const written: RegistryCredentialsInput[] = [];
  const gateway = await startGateway(config, {
    store: openStore({ dbUrl: "", dataDir: dir }),
    driver,
    log,
    registrySecrets: recordingSecrets(written),
  });
  const transport = createGrpcTransport({
    baseUrl: `http://127.0.0.1:${gateway.port}`,
    interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${TOKEN}`), next(req))],
  });
  return {
    gateway,
    driver,
    api: createClient(OpenShell, transport),
    ext: createClient(SandboxExtService, transport),
    registry: createClient(RegistryService, transport),
    written,
    logs,
  };
}

/** Asserts what a refusal must look like: INVALID_ARGUMENT (or an allowed code), one line, the field named. */
function checkRefusal(err: unknown, field: RegExp, allowed: readonly Code[] = []): ConnectError {
  const e = ConnectError.from(err);
  assert.ok(
    e.code === Code.InvalidArgument || allowed.includes(e.code),
    `expected INVALID_ARGUMENT${allowed.length ? ` or ${allowed.map((c) => Code[c]).join("/")}` : ""}, got ${Code[e.code]}: ${e.rawMessage.slice(0, 300)}`,
  );
  assert.ok(isOneLine(e.rawMessage), `one line without control characters: ${JSON.stringify(e.rawMessage)}`);
  assert.ok(e.rawMessage.length <= MAX_MESSAGE, `message of ${e.rawMessage.length} characters`);
  if (e.code === Code.InvalidArgument) assert.match(e.rawMessage, field, "the message names the field");
  return e;
}

// ---- oracles: independent statements of the rules (Kubernetes and upstream's limits) ----

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const RESERVED_ENV = ["OPENSHELL_SANDBOX_ID", "OPENSHELL_SANDBOX", "OPENSHELL_ENDPOINT"];
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const bytes = (s: string) => Buffer.byteLength(s, "utf8");
/** What the server reads: protobuf's UTF-8 decoder drops a leading byte order mark. */
const wire = (s: string) => (s.startsWith("\ufeff") ? s.slice(1) : s);
/**
 * A map as the server reads it: protobuf-es decodes maps into plain objects, where assigning the key
 * `__proto__` is a no-op, so such an entry never reaches the gateway (the sandbox is created without it).
 */
const wireEntries = (m: Record<string, string>) => Object.entries(m).filter(([k]) => k !== "__proto__");

const sandboxName = (raw: string): Verdict => {
  const v = wire(raw);
  return v === "" || (DNS1035.test(v) && v.length <= 63) ? "valid" : "invalid";
};
const labelValue = (raw: string): Verdict => {
  const v = wire(raw);
  return LABEL_VALUE.test(v) && v.length <= 63 ? "valid" : "invalid";
};
const qualifiedKey = (raw: string): Verdict => {
  const parts = wire(raw).split("/");
  if (parts.length > 2) return "invalid";
  const name = parts.at(-1)!;
  const prefixOk = parts.length === 1 || (DNS1123_SUBDOMAIN.test(parts[0]!) && parts[0]!.length <= 253);
  if (parts.length === 2 && parts[0]!.startsWith("openshell.ai")) return "either"; // reserved prefix
  return prefixOk && name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name)
    ? "valid"
    : "invalid";
};
const envKey = (raw: string, v = wire(raw)): Verdict =>
  ENV_NAME.test(v) && v.length <= 256 && !RESERVED_ENV.includes(v) && !v.startsWith("OPENSHELL_TLS")
    ? "valid"
    : "invalid";
/** Values: at most 8192 bytes (upstream counts bytes) and no NUL (execve cannot pass one). */
const envValue = (raw: string, v = wire(raw)): Verdict =>
  bytes(v) <= 8192 && !v.includes("\0") ? "valid" : "invalid";
const wellOutside = (max: number) => (v: string) =>
  bytes(v) > max || CONTROL.test(v) ? "invalid" : "either";
const pullSecrets = (list: readonly string[]): Verdict => {
  const distinct = new Set(list.map((s) => s.trim()).filter((s) => s !== ""));
  if (distinct.size > 32) return "invalid";
  return [...distinct].every((s) => s.length <= 253 && DNS1123_SUBDOMAIN.test(s)) ? "valid" : "invalid";
};

function request(patch: (req: CreateSandboxRequest) => void): CreateSandboxRequest {
  const req = create(CreateSandboxRequestSchema, {
    name: "probe",
    workspaceScope: WORKSPACE,
    spec: { template: { image: "registry.example.com/team/agent:1.0" } },
  });
  patch(req);
  return req;
}

interface CreateCase<T> {
  readonly title: string;
  readonly field: RegExp;
  readonly arb: fc.Arbitrary<T>;
  readonly build: (value: T) => CreateSandboxRequest;
  readonly verdict: (value: T) => Verdict;
  /** Per-sandbox pull secrets (CreateSandboxExt) instead of CreateSandbox. */
  readonly secrets?: (value: T) => string[];
  /** Codes besides INVALID_ARGUMENT a refusal may carry (UNIMPLEMENTED for fields this gateway lacks). */
  readonly allowed?: readonly Code[];
}

const c = <T>(def: CreateCase<T>): CreateCase<unknown> => def as CreateCase<unknown>;
const tmpl = (req: CreateSandboxRequest) => req.spec!.template!;

const CREATE_CASES: CreateCase<unknown>[] = [
  c({
    title: "name",
    field: /invalid name/,
    arb: badString,
    build: (v) => request((r) => (r.name = v)),
    verdict: sandboxName,
  }),
  c({
    title: "workspace",
    field: /invalid (workspace|name)/,
    arb: badString,
    build: (v) =>
      request(
        (r) =>
          (r.workspaceScope = create(WorkspaceSelectorSchema, {
            selection: { case: "workspace", value: v },
          })),
      ),
    verdict: (raw) => {
      const v = wire(raw);
      return v === "" || v === "default" || (DNS1035.test(v) && `${v}--probe`.length <= 63)
        ? "valid"
        : "invalid";
    },
  }),
  c({
    title: "spec.template.image",
    field: /invalid image/,
    arb: fc.oneof(
      badString,
      huge.map((h) => `registry.example.com/${h}:1`),
    ),
    build: (v) => request((r) => (tmpl(r).image = v)),
    verdict: (v) => (v === "" ? "valid" : wellOutside(1024)(v)),
  }),
  c({
    title: "spec.environment keys",
    field: /invalid environment/,
    arb: badString,
    build: (v) => request((r) => (r.spec!.environment = { [v]: "x" })),
    verdict: envKey,
  }),
  c({
    title: "spec.environment values",
    field: /invalid environment/,
    // badString alone reaches the two refusals (over 8192 bytes, a NUL) too rarely for 25 runs
    arb: fc.oneof(badString, huge, fc.constantFrom("\0", "a\0b")),
    build: (v) => request((r) => (r.spec!.environment = { VALUE: v })),
    verdict: envValue,
  }),
  c({
    title: "spec.template.environment (keys, values, count)",
    field: /invalid environment/,
    arb: mapOf(badString, badString),
    build: (v) => request((r) => (tmpl(r).environment = v)),
    verdict: (m) => {
      const entries = wireEntries(m);
      if (entries.length > 128) return "invalid";
      return entries.every(([k, v]) => envKey(k) === "valid" && envValue(v) === "valid")
        ? "valid"
        : "invalid";
    },
  }),
  c({
    title: "spec.template.labels",
    field: /invalid labels/,
    arb: mapOf(badString, fc.oneof(nameLike, badString)),
    build: (v) => request((r) => (tmpl(r).labels = v)),
    verdict: (m) => {
      const entries = wireEntries(m);
      if (entries.length > 128) return "invalid";
      const verdicts = entries.flatMap(([k, v]) => [qualifiedKey(k), labelValue(v)]);
      return verdicts.includes("invalid") ? "invalid" : verdicts.includes("either") ? "either" : "valid";
    },
  }),
  c({
    title: "labels (the sandbox's own, for selection)",
    field: /invalid labels/,
    arb: mapOf(badString, fc.oneof(nameLike, badString)),
    build: (v) => request((r) => (r.labels = v)),
    verdict: (m) => {
      const entries = wireEntries(m);
      if (entries.length > 128) return "invalid";
      const verdicts = entries.flatMap(([k, v]) => [qualifiedKey(k), labelValue(v)]);
      return verdicts.includes("invalid") ? "invalid" : verdicts.includes("either") ? "either" : "valid";
    },
  }),
  c({
    title: "spec.template.annotations",
    field: /invalid annotations/,
    arb: mapOf(badString, badString),
    build: (v) => request((r) => (tmpl(r).annotations = v)),
    verdict: (m) => {
      const entries = wireEntries(m);
      const total = entries.reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
      if (entries.length > 128 || total > 64 * 1024) return "invalid";
      return entries.some(([k]) => qualifiedKey(k) === "invalid") ? "invalid" : "either";
    },
  }),
  c({
    title: "annotations (the sandbox's own)",
    field: /invalid annotations/,
    arb: mapOf(badString, badString),
    build: (v) => request((r) => (r.annotations = v)),
    verdict: (m) => {
      const entries = wireEntries(m);
      const total = entries.reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
      if (entries.length > 128 || total > 64 * 1024) return "invalid";
      return entries.some(([k]) => qualifiedKey(k) === "invalid") ? "invalid" : "either";
    },
  }),
  c({
    title: "spec.template.resources quantities",
    field: /invalid (spec\.template\.)?resources/,
    arb: fc.tuple(fc.constantFrom("requests", "limits"), fc.constantFrom("cpu", "memory"), quantityLike),
    build: ([kind, resource, q]) =>
      request((r) => (tmpl(r).resources = { [kind]: { [resource]: q } } as JsonObject)),
    verdict: ([, , q]) => (q === "" ? "valid" : wellOutside(64)(q)),
  }),
  c({
    title: "spec.template.resources (any JSON)",
    field: /invalid (spec\.template\.)?resources/,
    arb: jsonish,
    build: (v) =>
      request((r) => {
        if (typeof v === "object" && v !== null && !Array.isArray(v)) tmpl(r).resources = v as JsonObject;
        else tmpl(r).resources = { requests: v } as JsonObject;
      }),
    verdict: () => "either",
  }),
  c({
    title: "spec.template.driver_config (node selector, tolerations)",
    field: /invalid (spec\.template\.driver_config|node selector|tolerations)/,
    arb: fc.tuple(fc.constantFrom("node_selector", "tolerations"), jsonish),
    build: ([key, v]) =>
      request((r) => (tmpl(r).driverConfig = { kubernetes: { pod: { [key]: v } } } as JsonObject)),
    verdict: () => "either",
  }),
  c({
    title: "spec.template.driver_config.kubernetes.pod.tolerations entries",
    field: /invalid (spec\.template\.driver_config\.kubernetes\.pod\.)?tolerations/,
    arb: fc.array(
      fc.oneof(
        fc.record(
          {
            key: fc.oneof(nameLike, badString, fc.jsonValue({ maxDepth: 1 })),
            operator: fc.oneof(fc.constantFrom("Exists", "Equal"), badString, fc.integer()),
            value: fc.oneof(nameLike, badString, fc.jsonValue({ maxDepth: 1 })),
            effect: fc.oneof(fc.constantFrom("", "NoSchedule", "NoExecute"), badString, fc.boolean()),
            tolerationSeconds: fc.oneof(fc.integer(), fc.double(), badString),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      { maxLength: 3 },
    ),
    build: (v) =>
      request(
        (r) => (tmpl(r).driverConfig = { kubernetes: { pod: { tolerations: v } } } as unknown as JsonObject),
      ),
    verdict: () => "either",
  }),
  c({
    title: "spec.template.runtime_class_name",
    field: /invalid runtime.class.name/,
    arb: badString,
    build: (v) => request((r) => (tmpl(r).runtimeClassName = v)),
    verdict: (raw) => {
      const v = wire(raw);
      return v === "" || (v.length <= 253 && DNS1123_SUBDOMAIN.test(v)) ? "valid" : "invalid";
    },
  }),
  c({
    title: "spec.command",
    field: /invalid command/,
    arb: fc.oneof(
      fc.array(badString, { maxLength: 4 }),
      fc.integer({ min: 120, max: 400 }).map((n) => Array.from({ length: n }, () => "x")),
    ),
    build: (v) => request((r) => (r.spec!.command = v)),
    verdict: (list) =>
      list.length > 128 || list.some((p) => p.includes("\0") || bytes(p) > 8192) ? "invalid" : "valid",
  }),
  c({
    title: "spec.resource_requirements.gpu.count",
    field: /invalid gpu/,
    arb: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
    build: (v) =>
      request(
        (r) => (r.spec!.resourceRequirements = create(ResourceRequirementsSchema, { gpu: { count: v } })),
      ),
    verdict: (n) => (n <= 16 ? "valid" : "invalid"),
  }),
  c({
    title: "spec.log_level",
    field: /invalid spec\.log_level/,
    arb: fc.oneof(badString, huge),
    build: (v) => request((r) => (r.spec!.logLevel = v)),
    verdict: (v) => (bytes(v) > 32 ? "invalid" : "either"),
  }),
  c({
    title: "CreateSandboxExt image_pull_secrets",
    field: /invalid image pull secrets?/,
    arb: nameList,
    build: () => request(() => undefined),
    secrets: (v) => v,
    verdict: pullSecrets,
  }),
];

describe("bad input over every API request field (fast-check, in-process gateway over gRPC)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.gateway.close(1000);
  });

  const assertNothingCreated = async () => {
    assert.equal(h.driver.objects.size, 0, "the driver has no object");
    const listed = await h.api.listSandboxes({ workspaceScope: ALL_WORKSPACES });
    assert.equal(listed.sandboxes.length, 0, "the store has no record");
  };
  /** Deletes what an accepted create made, so that the next run starts from nothing again. */
  const cleanUp = async () => {
    const listed = await h.api.listSandboxes({ workspaceScope: ALL_WORKSPACES });
    for (const s of listed.sandboxes) {
      await h.api.deleteSandbox({
        name: s.metadata!.name,
        workspaceScope: create(WorkspaceSelectorSchema, {
          selection: { case: "workspace", value: s.metadata!.workspace },
        }),
        allowMissing: true,
      });
    }
    for (const objectName of [...h.driver.objects.keys()]) h.driver.vanish(objectName);
    for (let i = 0; i < 100; i++) {
      if ((await h.api.listSandboxes({ workspaceScope: ALL_WORKSPACES })).sandboxes.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.fail("the accepted sandboxes could not be cleaned up");
  };

  for (const kase of CREATE_CASES) {
    test(`CreateSandbox ${kase.title}`, async () => {
      const counts = { accepted: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(kase.arb, async (value) => {
          const req = kase.build(value);
          const verdict = kase.verdict(value);
          try {
            const res = kase.secrets
              ? await h.ext.createSandboxExt({ request: req, imagePullSecrets: kase.secrets(value) })
              : await h.api.createSandbox(req);
            counts.accepted++;
            assert.ok(res.sandbox?.metadata?.id, "an accepted create returns the sandbox");
            await cleanUp();
            assert.notEqual(verdict, "invalid", "invalid input was accepted");
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            counts.refused++;
            const e = checkRefusal(err, kase.field, kase.allowed ?? [Code.Unimplemented]);
            assert.ok(
              verdict !== "valid" || e.code !== Code.InvalidArgument,
              `valid input refused: ${e.rawMessage}`,
            );
            await assertNothingCreated();
          }
        }),
        { numRuns: NUM_RUNS },
      );
      // the generators reach both sides of the rule (a property that only ever refuses proves little)
      assert.ok(counts.refused > 0, `some input was refused (${JSON.stringify(counts)})`);
    });
  }

  test("the whole request is bounded: a message over 4 MiB is refused with RESOURCE_EXHAUSTED, nothing created", async () => {
    const err = ConnectError.from(
      await h.api
        .createSandbox(request((r) => (tmpl(r).annotations = { a: "x".repeat(5 * 1024 * 1024) })))
        .then(
          () => assert.fail("a 5 MiB request was accepted"),
          (e: unknown) => e,
        ),
    );
    assert.ok(
      err.code === Code.ResourceExhausted || err.code === Code.InvalidArgument,
      `RESOURCE_EXHAUSTED or INVALID_ARGUMENT, got ${Code[err.code]}: ${err.rawMessage}`,
    );
    assert.ok(isOneLine(err.rawMessage));
    await assertNothingCreated();
  });
});

describe("bad input to the lookups, list, exec and the registry API (fast-check)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    // a sandbox that exists but is not READY: exec input is checked before anything runs
    await h.api.createSandbox(request((r) => (r.name = "target")));
  });
  after(async () => {
    await h.gateway.close(1000);
  });

  const nameOracle = (raw: string) => {
    const v = wire(raw);
    return DNS1035.test(v) && v.length <= 63 ? "valid" : "invalid";
  };
  const lookups: [string, (name: string) => Promise<unknown>][] = [
    ["GetSandbox", (name) => h.api.getSandbox({ name, workspaceScope: WORKSPACE })],
    ["DeleteSandbox", (name) => h.api.deleteSandbox({ name, workspaceScope: WORKSPACE })],
    ["StopSandbox", (name) => h.api.stopSandbox({ name, workspaceScope: WORKSPACE })],
    ["StartSandbox", (name) => h.api.startSandbox({ name, workspaceScope: WORKSPACE })],
    ["GetSandboxDetail", (name) => h.ext.getSandboxDetail({ name, workspaceScope: WORKSPACE })],
    ["GetSandboxOutput", (name) => h.ext.getSandboxOutput({ name, workspaceScope: WORKSPACE })],
  ];
  for (const [method, call] of lookups) {
    test(`${method} name and workspace`, async () => {
      await fc.assert(
        fc.asyncProperty(badString, badString, async (name, workspace) => {
          try {
            await call(name);
            assert.fail(`${method} of a name that does not exist succeeded`);
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            const e = checkRefusal(err, /invalid name/, [Code.NotFound]);
            const expected = nameOracle(name) === "invalid" ? Code.InvalidArgument : Code.NotFound;
            assert.equal(e.code, expected, e.rawMessage);
          }
          try {
            await h.api.getSandbox({
              name: "target",
              workspaceScope: { selection: { case: "workspace", value: workspace } },
            });
            assert.ok(["", "default"].includes(wire(workspace)), `found "target" in workspace ${workspace}`);
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            const e = checkRefusal(err, /invalid workspace/, [Code.NotFound]);
            const expected =
              wire(workspace) !== "" && nameOracle(workspace) === "invalid"
                ? Code.InvalidArgument
                : Code.NotFound;
            assert.equal(e.code, expected, e.rawMessage);
          }
        }),
        { numRuns: Math.ceil(NUM_RUNS / 2) },
      );
      assert.ok(h.driver.objects.has("target"), "the existing sandbox is untouched");
    });
  }

  test("ListSandboxes label_selector, page_token and page_size", async () => {
    await fc.assert(
      fc.asyncProperty(
        badString,
        fc.oneof(fc.constant(""), badString),
        fc.oneof(fc.integer({ min: -10, max: 600 }), fc.integer()),
        async (labelSelector, pageToken, pageSize) => {
          try {
            await h.api.listSandboxes({ workspaceScope: WORKSPACE, labelSelector, pageToken, pageSize });
            assert.ok(pageSize >= 0 && pageSize <= 500, `page_size ${pageSize} was accepted`);
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            checkRefusal(err, /invalid (label_selector|page_token|page_size)/);
          }
        },
      ),
      { numRuns: NUM_RUNS * 2 },
    );
  });

  test("ExecSandbox command, environment, workdir and timeout are checked before anything runs", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(badString, { maxLength: 3 }),
        mapOf(badString, badString),
        badString,
        fc.integer({ min: -1, max: 200_000 }),
        async (command, environment, workdir, timeout) => {
          const valid =
            command.length > 0 &&
            command.every((p) => !p.includes("\0") && bytes(p) <= 8192) &&
            Object.entries(environment).every(([k, v]) => envKey(k) === "valid" && !v.includes("\0")) &&
            Object.keys(environment).length <= 128 &&
            !workdir.includes("\0") &&
            bytes(workdir) <= 4096 &&
            timeout >= 0 &&
            timeout <= 86400;
          try {
            for await (const _ of h.api.execSandbox({
              sandbox: "target",
              workspaceScope: WORKSPACE,
              command,
              environment,
              workdir,
              executionTimeout: { seconds: BigInt(timeout) },
            }))
              assert.fail("exec ran in a sandbox that is not READY");
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            const e = checkRefusal(err, /invalid (command|environment|workdir|execution_timeout)/, [
              Code.FailedPrecondition,
            ]);
            if (valid)
              assert.equal(e.code, Code.FailedPrecondition, `valid exec input refused: ${e.rawMessage}`);
            else
              assert.equal(
                e.code,
                Code.InvalidArgument,
                `invalid exec input not refused as such: ${e.rawMessage}`,
              );
          }
        },
      ),
      { numRuns: NUM_RUNS * 2 },
    );
  });

  const base: Omit<CreateRegistrySecretRequest, "$typeName"> = {
    namespace: "",
    name: "team-cred",
    server: "registry.example.com:5000",
    username: "robot",
    password: "s3cret-value",
  };
  const registryFields: [keyof typeof base, RegExp][] = [
    ["namespace", /invalid namespace/],
    ["name", /invalid name/],
    ["server", /invalid server/],
    ["username", /invalid username/],
    ["password", /invalid password/],
  ];
  for (const verb of ["create", "update"] as const) {
    test(`RegistryService ${verb}: namespace, name, server, username, password`, async () => {
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...registryFields), badString, async ([field, pattern], value) => {
          const req = { ...base, [field]: value };
          const before = h.written.length;
          try {
            const json =
              verb === "create"
                ? toJsonString(CreateRegistrySecretResponseSchema, await h.registry.createRegistrySecret(req))
                : toJsonString(
                    UpdateRegistrySecretResponseSchema,
                    await h.registry.updateRegistrySecret(req),
                  );
            assert.equal(h.written.length, before + 1, "an accepted request reached the backend once");
            assert.doesNotMatch(json, /s3cret/, "no password in the response");
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            refused++;
            const e = checkRefusal(err, pattern);
            assert.equal(h.written.length, before, "a refused request wrote nothing");
            if (field === "password" && value.length >= 4) {
              assert.ok(!e.rawMessage.includes(value), "the password is never echoed");
            }
            assert.ok(!e.rawMessage.includes("s3cret-value"), "the password is never echoed");
          }
        }),
        { numRuns: NUM_RUNS * 2 },
      );
      assert.ok(refused > 0);
      assert.ok(!h.logs.join("").includes("s3cret-value"), "the password is never logged");
    });
  }

  test("RegistryService list and delete: namespace and name", async () => {
    await fc.assert(
      fc.asyncProperty(badString, badString, async (namespace, name) => {
        for (const call of [
          () => h.registry.listRegistrySecrets({ namespace }),
          () => h.registry.deleteRegistrySecret({ namespace, name }),
        ]) {
          try {
            await call();
          } catch (err) {
            checkRefusal(err, /invalid (namespace|name)/);
          }
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
