// The Helm chart deploy/helm/openshell: helm lint (defaults and every ci/ file), the helm-unittest suites,
// the values schema's rejections, the README's values table, the rendered gateway.toml through the
// gateway's own `check-config`, and, against the test bed's API server, a server-side dry run of the
// rendered chart (restricted Pod Security) and `kubectl auth can-i` for the RBAC it grants.
//
// helm, helm-unittest and kubectl come from the test bed (`bash testbed/cluster.sh build`); the cluster
// tests need tier api. A missing tool or cluster FAILS the test with the reason: nothing skips.

import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";

import { parse, parseAllDocuments } from "yaml";

import {
  REPO_ROOT,
  deleteNamespace,
  requireCluster,
  uniqueName,
  waitFor,
  type Cluster,
} from "../support/cluster.js";

const CHART = path.join(REPO_ROOT, "deploy", "helm", "openshell");
const CI_DIR = path.join(CHART, "ci");
const CI_FILES = readdirSync(CI_DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => path.join(CI_DIR, f));
const GATEWAY_BIN = path.join(REPO_ROOT, "bin", "openshell-gateway");
const RELEASE = "openshell";
const RELEASE_NS = "my-namespace";
const PLAINTEXT = path.join(CI_DIR, "values-plaintext.yaml");

const work = mkdtempSync(path.join(tmpdir(), "openshell-chart-"));
after(() => rmSync(work, { recursive: true, force: true }));

// ---- tools ----

let testbedEnvCache: Record<string, string> | undefined;
function testbedEnv(): Record<string, string> {
  if (!testbedEnvCache) {
    const r = spawnSync("bash", [path.join(REPO_ROOT, "testbed", "cluster.sh"), "env"], { encoding: "utf8" });
    assert.equal(r.status, 0, `bash testbed/cluster.sh env failed: ${r.stderr}`);
    testbedEnvCache = {};
    for (const line of r.stdout.split("\n")) {
      const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
      if (m) testbedEnvCache[m[1]!] = m[2]!;
    }
  }
  return testbedEnvCache;
}

function tool(envName: "TESTBED_HELM" | "TESTBED_HELM_UNITTEST" | "TESTBED_KUBECTL"): string {
  const p = process.env[envName] ?? testbedEnv()[envName];
  assert.ok(p, `${envName} is not known: run \`bash testbed/cluster.sh build\``);
  assert.ok(
    existsSync(p),
    `${p} does not exist: run \`bash testbed/cluster.sh build\` (it builds helm, helm-unittest and kubectl)`,
  );
  return p;
}

function run(cmd: string, args: readonly string[], input?: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: "utf8", input, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

function describeRun(r: SpawnSyncReturns<string>): string {
  return `exit ${r.status}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`;
}

/** `helm template`; extra args are --set/-f pairs. */
function helmTemplate(args: readonly string[], namespace = RELEASE_NS): SpawnSyncReturns<string> {
  return run(tool("TESTBED_HELM"), ["template", RELEASE, CHART, "--namespace", namespace, ...args]);
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    template?: { metadata?: { annotations?: Record<string, string> } };
    rules?: unknown;
  };
}

function renderObjects(args: readonly string[], namespace = RELEASE_NS): K8sObject[] {
  const r = helmTemplate(args, namespace);
  assert.equal(r.status, 0, `helm template ${args.join(" ")} failed: ${describeRun(r)}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function gatewayToml(args: readonly string[]): string {
  const cm = renderObjects(args).find(
    (o) => o.kind === "ConfigMap" && o.metadata.name === `${RELEASE}-config`,
  );
  assert.ok(cm?.data?.["gateway.toml"], "the chart renders ConfigMap openshell-config with gateway.toml");
  return cm.data["gateway.toml"];
}

// ---- helm lint, helm-unittest, README ----

describe("chart checks without a cluster", () => {
  test("helm lint --strict passes for the defaults and every ci/ values file", () => {
    assert.ok(CI_FILES.length >= 4, `ci/ has values files (${CI_FILES.length})`);
    for (const values of [undefined, ...CI_FILES]) {
      const r = run(tool("TESTBED_HELM"), ["lint", "--strict", CHART, ...(values ? ["-f", values] : [])]);
      assert.equal(
        r.status,
        0,
        `helm lint ${values ? path.basename(values) : "(defaults)"}: ${describeRun(r)}`,
      );
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test("helm-unittest runs every suite in tests/ and every test passes", () => {
    const suites = readdirSync(path.join(CHART, "tests")).filter((f) => f.endsWith("_test.yaml"));
    const r = run(tool("TESTBED_HELM_UNITTEST"), ["--strict", "--color=false", CHART]);
    assert.equal(r.status, 0, `helm-unittest failed: ${describeRun(r)}`);
    const m = /Test Suites:\s+(\d+) passed, (\d+) total[\s\S]*?Tests:\s+(\d+) passed, (\d+) total/.exec(
      r.stdout,
    );
    assert.ok(m, `helm-unittest summary not found:\n${r.stdout.slice(-2000)}`);
    const [, suitesPassed, suitesTotal, testsPassed, testsTotal] = m.map(Number);
    assert.equal(suitesTotal, suites.length, `every file in tests/ ran (${suites.join(", ")})`);
    assert.equal(suitesPassed, suitesTotal);
    assert.ok(testsTotal! > 0, "helm-unittest ran tests");
    assert.equal(testsPassed, testsTotal);
    // helm-unittest leaves an empty __snapshot__ directory (no snapshot tests here)
    try {
      rmdirSync(path.join(CHART, "tests", "__snapshot__"));
    } catch {
      // absent, or holds snapshots someone added: leave it
    }
  });

  test("every value in values.yaml is set by at least one helm-unittest case", () => {
    const values = parse(readFileSync(path.join(CHART, "values.yaml"), "utf8")) as Record<string, unknown>;
    const tests = readdirSync(path.join(CHART, "tests"))
      .filter((f) => f.endsWith("_test.yaml"))
      .map((f) => readFileSync(path.join(CHART, "tests", f), "utf8"))
      .join("\n");
    const leaves = (v: unknown, prefix: string[] = []): string[][] =>
      v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0
        ? Object.entries(v).flatMap(([k, child]) => leaves(child, [...prefix, k]))
        : [prefix];
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    // a leaf is covered when it, or an object above it, is a `set:` key (dotted or nested) somewhere
    const uncovered = leaves(values).filter(
      (leaf) =>
        !leaf.some((_, i) =>
          new RegExp(`^\\s*(- )?${escape(leaf.slice(0, i + 1).join("."))}:`, "m").test(tests),
        ),
    );
    assert.deepEqual(
      uncovered.map((l) => l.join(".")),
      [],
      "values no helm-unittest case sets",
    );
  });

  test("the README values table matches values.yaml (node scripts/helm-docs.mjs --check)", () => {
    const r = run(process.execPath, [path.join(REPO_ROOT, "scripts", "helm-docs.mjs"), "--check", CHART]);
    assert.equal(r.status, 0, `README drift or undocumented values: ${describeRun(r)}`);
  });

  test("the README drift check fails on a changed default and on an undocumented key", () => {
    const copy = path.join(work, "chart-copy");
    run("cp", ["-r", CHART, copy]);
    const valuesPath = path.join(copy, "values.yaml");
    const values = readFileSync(valuesPath, "utf8");
    assert.match(values, /^ {2}logLevel: info$/m);
    writeFileSync(valuesPath, values.replace(/^ {2}logLevel: info$/m, "  logLevel: debug"));
    const changed = run(process.execPath, [
      path.join(REPO_ROOT, "scripts", "helm-docs.mjs"),
      "--check",
      copy,
    ]);
    assert.notEqual(changed.status, 0, "a changed default must fail the check");
    assert.match(changed.stderr, /README\.md is out of date with values\.yaml/);

    writeFileSync(valuesPath, `${values}undocumentedKey: 1\n`);
    const undocumented = run(process.execPath, [
      path.join(REPO_ROOT, "scripts", "helm-docs.mjs"),
      "--check",
      copy,
    ]);
    assert.notEqual(undocumented.status, 0, "an undocumented value must fail the check");
    assert.match(undocumented.stderr, /undocumentedKey has no "# --" comment/);
  });
});

// ---- schema and template rejections, through `helm template` ----

describe("values the chart rejects", () => {
  const cases: { name: string; args: string[]; message: RegExp }[] = [
    {
      name: "a sandbox pull secret without a name",
      args: ["--set", "server.sandboxImagePullSecrets[0].secret=regcred"],
      message: /sandboxImagePullSecrets\/0.*(missing propert(y|ies) 'name'|name is required)/s,
    },
    {
      name: "an invalid sandbox pull secret name",
      args: ["--set", "server.sandboxImagePullSecrets[0].name=Bad_Name"],
      message: /sandboxImagePullSecrets\/0\/name.*'Bad_Name' does not match pattern/s,
    },
    {
      name: "a gateway pull secret with an invalid name",
      args: ["--set", "imagePullSecrets[0].name=-bad"],
      message: /imagePullSecrets\/0\/name.*does not match pattern/s,
    },
    {
      name: "an unknown sandbox pull policy",
      args: ["--set", "server.sandboxImagePullPolicy=Sometimes"],
      message: /sandboxImagePullPolicy.*value must be one of '', 'Always', 'IfNotPresent', 'Never'/s,
    },
    {
      name: "an unknown gateway pull policy",
      args: ["--set", "image.pullPolicy=always"],
      message: /image\/pullPolicy.*value must be one of 'Always', 'IfNotPresent', 'Never'/s,
    },
    {
      name: "a string where a boolean belongs",
      args: ["--set-string", "server.disableTls=yes"],
      message: /server\/disableTls.*got string, want boolean/s,
    },
    {
      name: "a list of strings where {name} entries belong",
      args: ["--set", "server.sandboxImagePullSecrets={regcred}"],
      message: /sandboxImagePullSecrets\/0.*got string, want object/s,
    },
    {
      name: "an invalid sandbox namespace",
      args: ["--set", "server.sandboxNamespace=Agents"],
      message: /server\/sandboxNamespace.*'Agents' does not match pattern/s,
    },
    {
      name: "a port out of range",
      args: ["--set", "service.port=70000"],
      message: /service\/port.*maximum/s,
    },
    {
      name: "a misspelled value",
      args: ["--set", "server.sandboxImagePullSecret[0].name=regcred"],
      message: /additional propert(y|ies) 'sandboxImagePullSecret' not allowed/,
    },
    {
      name: "an unknown sandbox resource",
      args: ["--set", "server.sandboxResource=job"],
      message: /server\/sandboxResource.*value must be one of 'auto', 'agent-sandbox', 'pod'/s,
    },
    {
      name: "an unknown pull secret preflight mode",
      args: ["--set", "server.pullSecretPreflight=strict"],
      message: /server\/pullSecretPreflight.*value must be one of 'enforce', 'warn', 'off'/s,
    },
    {
      name: "a registry probe timeout over 60 seconds",
      args: ["--set", "server.registryProbe.timeoutSeconds=61"],
      message: /server\/registryProbe\/timeoutSeconds.*maximum/s,
    },
    {
      name: "a negative pull failure grace period",
      args: ["--set", "server.pullFailureGraceSeconds=-1"],
      message: /server\/pullFailureGraceSeconds.*minimum/s,
    },
    {
      name: "a realm allow-list entry that is a URL, not a host",
      args: [
        "--set",
        "server.registryProbe.enabled=true",
        "--set",
        "server.registryProbe.realmAllowList[0]=https://auth.docker.io",
      ],
      message: /server\/registryProbe\/realmAllowList\/0.*does not match pattern/s,
    },
    {
      name: "a string where rbac.readAllPullSecrets' boolean belongs",
      args: ["--set-string", "rbac.readAllPullSecrets=true"],
      message: /rbac\/readAllPullSecrets.*got string, want boolean/s,
    },
    {
      name: "a CA bundle from both a ConfigMap and a Secret",
      args: [
        "--set",
        "server.registryProbe.enabled=true",
        "--set",
        "server.registryProbe.caBundle.configMapName=ca",
        "--set",
        "server.registryProbe.caBundle.secretName=ca",
      ],
      message:
        /server\.registryProbe\.caBundle names both a ConfigMap \(ca\) and a Secret \(ca\): set only one/,
    },
    {
      name: "a CA bundle with the registry probe off",
      args: ["--set", "server.registryProbe.caBundle.secretName=ca"],
      message: /server\.registryProbe\.caBundle is set but server\.registryProbe\.enabled=false/,
    },
    {
      name: "a misspelled registry probe value",
      args: ["--set", "server.registryProbe.caFile=/ca.crt"],
      message: /additional propert(y|ies) 'caFile' not allowed/,
    },
    {
      name: "replicaCount 2 with SQLite",
      args: ["--set", "replicaCount=2"],
      message: /replicaCount=2 requires server\.externalDbSecret\.name: SQLite allows one writer/,
    },
    {
      name: "no client authentication",
      args: ["--set", "server.tls.clientCaSecretName="],
      message: /no client authentication: set server\.tls\.clientCaSecretName/,
    },
  ];
  for (const c of cases) {
    test(`rejects ${c.name}`, () => {
      const r = helmTemplate(c.args);
      assert.notEqual(
        r.status,
        0,
        `helm template ${c.args.join(" ")} must fail; it rendered:\n${r.stdout.slice(0, 500)}`,
      );
      assert.match(r.stderr, c.message);
    });
  }

  test("values.yaml itself and every ci/ file pass the schema", () => {
    for (const values of [undefined, ...CI_FILES]) {
      const r = helmTemplate(values ? ["-f", values] : []);
      assert.equal(r.status, 0, `${values ? path.basename(values) : "defaults"}: ${describeRun(r)}`);
    }
  });
});

// ---- the rendered gateway.toml, read by the gateway itself ----

interface CheckConfigOutput {
  valid: boolean;
  problems: string[];
  settings: Record<string, { value: unknown; source: { kind: string; key?: string } }>;
}

function checkConfig(
  toml: string,
  name: string,
  flags: readonly string[] = [],
): { code: number | null; out: CheckConfigOutput; stderr: string } {
  assert.ok(
    existsSync(path.join(REPO_ROOT, "dist", "gateway", "main.js")),
    "dist/ is missing: run `make build`",
  );
  const file = path.join(work, `${name}.toml`);
  writeFileSync(file, toml);
  const r = run(process.execPath, [GATEWAY_BIN, "check-config", "--config", file, ...flags]);
  let out: CheckConfigOutput;
  try {
    out = JSON.parse(r.stdout) as CheckConfigOutput;
  } catch {
    assert.fail(
      `check-config did not load ${name} (unknown key or bad value?): ${describeRun(r)}\n--- ${file}\n${toml}`,
    );
  }
  return { code: r.status, out, stderr: r.stderr };
}

// Files the chart mounts from Secrets exist only in the pod: check-config may only complain about those.
const MOUNTED_FILE_PROBLEM =
  /^TLS (certificate|key|client CA) \/etc\/openshell-tls\/[a-z-]+\/[a-z.]+ \(file .*\) cannot be read: no such file$|^auth token file \/etc\/openshell-auth\/token \(file .*\) cannot be read: no such file$|cannot be read: no such file/;

describe("gateway.toml is a valid gateway configuration (openshell-gateway check-config)", () => {
  test("the defaults load; only the Secret-mounted TLS files are missing outside the pod", () => {
    const { out } = checkConfig(gatewayToml([]), "defaults");
    assert.ok(out.problems.length > 0, "the default TLS files do not exist here");
    for (const p of out.problems) assert.match(p, MOUNTED_FILE_PROBLEM);
    for (const p of out.problems)
      assert.match(p, /\/etc\/openshell-tls\/(server\/tls\.(crt|key)|client-ca\/ca\.crt)/);
    assert.equal(out.settings.namespace?.value, RELEASE_NS);
    assert.equal(out.settings.namespace?.source.kind, "file");
    assert.equal(out.settings.port?.value, 8080);
    assert.equal(out.settings.healthPort?.value, 8081);
    assert.equal(out.settings.metricsPort?.value, 9090);
    assert.equal(out.settings.bindAddress?.value, "0.0.0.0");
    assert.equal(out.settings.tlsClientCa?.value, "/etc/openshell-tls/client-ca/ca.crt");
    assert.deepEqual(out.settings.imagePullSecrets?.value, []);
    assert.equal(
      out.settings.imagePullSecrets?.source.kind,
      "default",
      "no image_pull_secrets key by default",
    );
    assert.equal(out.settings.grpcEndpoint?.value, `https://${RELEASE}.${RELEASE_NS}.svc.cluster.local:8080`);
    // the pull path settings are explicit in the file, with the gateway's defaults
    for (const [key, value] of [
      ["pullSecretPreflight", "enforce"],
      ["registryNodeCredentials", false],
      ["registryProbe", false],
      ["pullFailureGraceSeconds", 20],
      ["registrySecretManagement", false],
      ["reconcileIntervalSeconds", 60],
      ["orphanGraceSeconds", 300],
    ] as const) {
      assert.equal(out.settings[key]?.value, value, key);
      assert.equal(out.settings[key]?.source.kind, "file", `${key} comes from the file`);
    }
    // the probe's own settings are rendered only with the probe
    for (const key of ["registryProbeCaFile", "registryProbeRealmAllowList", "registryProbeTimeoutSeconds"]) {
      assert.equal(out.settings[key]?.source.kind, "default", `${key} is not in the file`);
    }
  });

  test("the plaintext development values are valid as they are (exit 0)", () => {
    const { code, out, stderr } = checkConfig(gatewayToml(["-f", PLAINTEXT]), "plaintext");
    assert.equal(code, 0, `check-config: ${stderr}`);
    assert.equal(out.valid, true);
    assert.equal(out.settings.disableTls?.value, true);
    assert.equal(out.settings.allowUnauthenticated?.value, true);
  });

  test("sandbox pull secrets, mirrors and the other driver settings reach the gateway (exit 0)", () => {
    const toml = gatewayToml(["-f", path.join(CI_DIR, "values-private-registry.yaml"), "-f", PLAINTEXT]);
    const { code, out, stderr } = checkConfig(toml, "private-registry");
    assert.equal(code, 0, `check-config: ${stderr}\n${toml}`);
    const s = out.settings;
    const fromFile = (key: string, value: unknown) => {
      assert.deepEqual(s[key]?.value, value, key);
      assert.equal(s[key]?.source.kind, "file", `${key} comes from the file`);
    };
    fromFile("imagePullSecrets", ["regcred", "backup-regcred"]);
    fromFile("defaultImage", "registry.example.com/agents/base:1.0");
    fromFile("imagePullPolicy", "IfNotPresent");
    fromFile("serviceAccountName", "sandboxes");
    fromFile("mergeServiceAccountPullSecrets", true);
    fromFile("registryMirrors", {
      "docker.io": "mirror.example.com/dockerhub",
      "ghcr.io": "mirror.example.com/ghcr",
    });
    fromFile("sandboxResource", "agent-sandbox");
    fromFile("sandboxApiVersion", "v1beta1");
    fromFile("workspaceStorageSize", "2Gi");
    fromFile("workspaceStorageClass", "fast");
    fromFile("defaultRuntimeClassName", "gvisor");
    fromFile("hostGatewayIp", "10.0.0.1");
    fromFile("clientTlsSecretName", "openshell-client-tls");
    fromFile("grpcEndpoint", `http://${RELEASE}.${RELEASE_NS}.svc.cluster.local:8080`);
    fromFile("pullSecretPreflight", "warn");
    fromFile("registryNodeCredentials", true);
    fromFile("registryProbe", true);
    fromFile("registryProbeCaFile", "/etc/openshell-registry-ca/ca.crt");
    fromFile("registryProbeRealmAllowList", ["auth.docker.io"]);
    fromFile("registryProbeTimeoutSeconds", 10);
    fromFile("pullFailureGraceSeconds", 60);
    fromFile("reconcileIntervalSeconds", 30);
    fromFile("orphanGraceSeconds", 600);
    fromFile("registrySecretManagement", false);
    // the gateway's own pull secret is nowhere in the sandbox configuration
    assert.doesNotMatch(toml, /gateway-regcred/);
  });

  test("every ci/ file renders a configuration the gateway loads", () => {
    for (const values of CI_FILES) {
      const { out } = checkConfig(gatewayToml(["-f", values]), path.basename(values, ".yaml"));
      for (const p of out.problems) assert.match(p, MOUNTED_FILE_PROBLEM, `${path.basename(values)}: ${p}`);
    }
  });

  test("per-sandbox secrets and registry secret management reach the gateway (exit 0)", () => {
    const perSandbox = checkConfig(
      gatewayToml(["-f", path.join(CI_DIR, "values-per-sandbox-secrets.yaml"), "-f", PLAINTEXT]),
      "per-sandbox-secrets",
    );
    assert.equal(perSandbox.code, 0, `check-config: ${perSandbox.stderr}`);
    const s = perSandbox.out.settings;
    assert.equal(s.pullSecretPreflight?.value, "enforce");
    assert.equal(s.registryProbe?.value, true);
    assert.equal(s.registryProbeCaFile?.value, "/etc/openshell-registry-ca/ca.crt");
    assert.equal(s.registryProbeTimeoutSeconds?.value, 3);
    assert.deepEqual(s.registryProbeRealmAllowList?.value, []);
    assert.equal(s.registryProbeRealmAllowList?.source.kind, "default", "an empty allow-list renders no key");
    assert.equal(s.pullFailureGraceSeconds?.value, 0);

    const managed = checkConfig(
      gatewayToml(["-f", path.join(CI_DIR, "values-manage-secrets.yaml"), "-f", PLAINTEXT]),
      "manage-secrets",
    );
    assert.equal(managed.code, 0, `check-config: ${managed.stderr}`);
    assert.equal(managed.out.settings.registrySecretManagement?.value, true);
    assert.equal(managed.out.settings.registrySecretManagement?.source.kind, "file");

    const off = checkConfig(
      gatewayToml(["-f", PLAINTEXT, "--set", "server.pullSecretPreflight=off"]),
      "preflight-off",
    );
    assert.equal(off.code, 0, `check-config: ${off.stderr}`);
    assert.equal(off.out.settings.pullSecretPreflight?.value, "off");
  });

  test("token auth renders a token file the gateway accepts", () => {
    const { out } = checkConfig(
      gatewayToml(["--set", "server.tls.clientCaSecretName=", "--set", "server.auth.tokenSecretName=tok"]),
      "token",
    );
    assert.equal(out.settings.authTokenFile?.value, "/etc/openshell-auth/token");
    for (const p of out.problems) assert.match(p, MOUNTED_FILE_PROBLEM);
  });

  test("a configuration change changes the pod's checksum/gateway-config (pods roll)", () => {
    const checksum = (args: string[]) => {
      const sts = renderObjects(args).find((o) => o.kind === "StatefulSet");
      const value = sts?.spec?.template?.metadata?.annotations?.["checksum/gateway-config"];
      assert.match(value ?? "", /^[0-9a-f]{64}$/);
      return value;
    };
    const base = checksum([]);
    assert.equal(checksum([]), base, "the checksum is stable");
    assert.notEqual(checksum(["--set", "server.logLevel=debug"]), base);
    assert.notEqual(checksum(["--set", "server.sandboxImagePullSecrets[0].name=regcred"]), base);
    assert.notEqual(checksum(["--set", "server.pullSecretPreflight=warn"]), base);
    assert.notEqual(checksum(["--set", "registrySecrets.manage=true"]), base);
  });
});

// ---- against the test bed's API server ----

async function createNamespace(
  c: Cluster,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const name = uniqueName(prefix);
  await c.core.createNamespace({
    body: { metadata: { name, labels: { "openshell.ai/test": "chart", ...labels } } },
  });
  return name;
}

function kubectl(c: Cluster, args: readonly string[], input?: string): SpawnSyncReturns<string> {
  return run(tool("TESTBED_KUBECTL"), ["--kubeconfig", c.kubeconfigPath, ...args], input);
}

describe("against the test bed's API server", () => {
  const namespaces: string[] = [];
  after(async () => {
    for (const ns of namespaces) await deleteNamespace(ns);
  });

  test("the rendered chart passes a server-side dry run, defaults and every ci/ file, under restricted Pod Security", async () => {
    const c = await requireCluster("api");
    const restricted = {
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
      "pod-security.kubernetes.io/audit": "restricted",
    };
    const ns = await createNamespace(c, "chart", restricted);
    namespaces.push(ns);
    for (const values of [undefined, ...CI_FILES]) {
      const label = values ? path.basename(values) : "defaults";
      // the sandbox namespace must exist for the namespaced Role and NetworkPolicy: use the release's
      const r = helmTemplate(
        [...(values ? ["-f", values] : []), "--set", `server.sandboxNamespace=${ns}`],
        ns,
      );
      assert.equal(r.status, 0, `${label}: ${describeRun(r)}`);
      const applied = kubectl(c, ["apply", "--dry-run=server", "-n", ns, "-f", "-"], r.stdout);
      assert.equal(applied.status, 0, `${label}: kubectl apply --dry-run=server: ${describeRun(applied)}`);
      assert.doesNotMatch(
        applied.stderr,
        /violate PodSecurity/,
        `${label}: restricted Pod Security warnings`,
      );
      assert.match(applied.stdout, /configmap\/openshell-config created \(server dry run\)/);
      assert.match(applied.stdout, /(statefulset|deployment)\.apps\/openshell created \(server dry run\)/);
    }
  });

  test("the RBAC is the minimum: kubectl auth can-i as the gateway's ServiceAccount", async () => {
    const c = await requireCluster("api");
    const ns = await createNamespace(c, "chart-rbac");
    const other = await createNamespace(c, "chart-other");
    namespaces.push(ns, other);
    const rbacOnly = [
      "--show-only",
      "templates/serviceaccount.yaml",
      "--show-only",
      "templates/role.yaml",
      "--show-only",
      "templates/rolebinding.yaml",
    ];
    const apply = (extra: string[]) => {
      const r = helmTemplate(
        [...rbacOnly, "--set", "server.sandboxImagePullSecrets[0].name=regcred", ...extra],
        ns,
      );
      assert.equal(r.status, 0, describeRun(r));
      const a = kubectl(c, ["apply", "-n", ns, "-f", "-"], r.stdout);
      assert.equal(a.status, 0, `kubectl apply: ${describeRun(a)}`);
    };
    const as = `system:serviceaccount:${ns}:${RELEASE}`;
    const canI = (verb: string, resource: string, namespace = ns) => {
      const r = kubectl(c, ["auth", "can-i", verb, resource, "-n", namespace, "--as", as]);
      assert.ok(r.status === 0 || r.status === 1, `kubectl auth can-i: ${describeRun(r)}`);
      return r.stdout.trim() === "yes";
    };
    const expect = async (
      rules: [verb: string, resource: string, allowed: boolean, namespace?: string][],
    ) => {
      // RBAC changes reach the authorizer's cache within a moment
      await waitFor(() => rules.every(([v, r, a, n]) => canI(v, r, n) === a), {
        timeoutMs: 15_000,
        description: "RBAC to settle",
      });
      for (const [verb, resource, allowed, namespace] of rules) {
        assert.equal(
          canI(verb, resource, namespace),
          allowed,
          `can-i ${verb} ${resource} -n ${namespace ?? ns}`,
        );
      }
    };

    apply([]);
    await expect([
      ["create", "sandboxes.agents.x-k8s.io", true],
      ["patch", "sandboxes.agents.x-k8s.io", true],
      ["watch", "sandboxes.agents.x-k8s.io", true],
      ["update", "sandboxes.agents.x-k8s.io", false],
      ["create", "pods", true],
      ["watch", "pods", true],
      ["patch", "pods", false],
      ["create", "pods/exec", true],
      ["get", "pods/exec", true],
      ["get", "pods/log", true],
      ["list", "events", true],
      ["create", "events", false],
      ["get", "secrets/regcred", true],
      ["list", "secrets/regcred", true],
      ["get", "secrets/other", false],
      ["list", "secrets", false],
      ["create", "secrets", false],
      ["delete", "secrets/regcred", false],
      ["get", "serviceaccounts/default", false],
      ["list", "serviceaccounts", false],
      ["get", "configmaps", false],
      ["create", "rolebindings.rbac.authorization.k8s.io", false],
      ["get", "pods", false, other],
      ["list", "secrets/regcred", false, other],
      ["create", "sandboxes.agents.x-k8s.io", false, other],
    ]);

    // what resourceNames allow for collections: list/watch only with a metadata.name field selector
    const named = kubectl(c, [
      "get",
      "secrets",
      "-n",
      ns,
      "--as",
      as,
      "--field-selector",
      "metadata.name=regcred",
    ]);
    assert.equal(
      named.status,
      0,
      `a field-selected list of an allowed name is authorized: ${describeRun(named)}`,
    );
    const all = kubectl(c, ["get", "secrets", "-n", ns, "--as", as]);
    assert.notEqual(all.status, 0, "listing every Secret is forbidden");
    assert.match(all.stderr, /forbidden/i);

    apply([
      "--set",
      "server.mergeServiceAccountPullSecrets=true",
      "--set",
      "server.sandboxServiceAccount=sandboxes",
      "--set",
      "server.sandboxResource=agent-sandbox",
      "--set",
      "registrySecrets.manage=true",
      "--set",
      "registrySecrets.managedNames[0]=openshell-registry",
    ]);
    await expect([
      ["get", "serviceaccounts/sandboxes", true],
      ["list", "serviceaccounts/sandboxes", true],
      ["watch", "serviceaccounts/sandboxes", true],
      ["list", "serviceaccounts", false],
      ["watch", "serviceaccounts", false],
      ["get", "serviceaccounts/default", false],
      ["create", "pods", false],
      ["delete", "pods", false],
      ["create", "secrets", true],
      ["update", "secrets/openshell-registry", true],
      ["delete", "secrets/openshell-registry", true],
      ["delete", "secrets/regcred", false],
      ["get", "secrets/regcred", true],
      ["list", "secrets", false],
    ]);

    // the ServiceAccount reflector's field-selected list works, a plain list does not
    const sa = kubectl(c, [
      "get",
      "serviceaccounts",
      "-n",
      ns,
      "--as",
      as,
      "--field-selector",
      "metadata.name=sandboxes",
    ]);
    assert.equal(sa.status, 0, `a field-selected list of the sandbox ServiceAccount: ${describeRun(sa)}`);
    const allSa = kubectl(c, ["get", "serviceaccounts", "-n", ns, "--as", as]);
    assert.notEqual(allSa.status, 0, "listing every ServiceAccount is forbidden");

    // rbac.readAllPullSecrets: any Secret of the sandbox namespace may be read (per-sandbox pull secrets),
    // still nothing written and nothing in other namespaces
    apply(["--set", "rbac.readAllPullSecrets=true"]);
    await expect([
      ["get", "secrets/other", true],
      ["list", "secrets", true],
      ["watch", "secrets", true],
      ["create", "secrets", false],
      ["delete", "secrets/regcred", false],
      ["list", "serviceaccounts", false],
      ["list", "secrets", false, other],
    ]);
  });
});
