// The `openshell-gateway` executable as an operator runs it: exit codes, one-line errors, JSON output.
// Runs the built bin/ (make test builds first).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { SETTING_KEYS, SETTINGS, type Setting } from "../../src/config/settings.js";

const BIN = new URL("../../bin/openshell-gateway", import.meta.url).pathname;
const DEV = ["--disable-tls", "--allow-unauthenticated"];

function run(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function assertOneLineError(result: ReturnType<typeof run>, pattern: RegExp) {
  assert.equal(result.code, 2, `exit code 2, got ${result.code}: ${result.stderr}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line: ${result.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /\bat .*\.js:\d+/, "no stack trace");
}

interface CheckConfigJson {
  valid: boolean;
  file: string | null;
  problems: string[];
  settings: Record<
    string,
    {
      value: unknown;
      source: { kind: string; line?: number };
      flag: string;
      env: string;
      toml: string | null;
    }
  >;
}

describe("check-config", () => {
  test("prints every setting with its value and source, exit 0", () => {
    const dir = mkdtempSync(join(tmpdir(), "osgw-"));
    const file = join(dir, "gateway.toml");
    writeFileSync(
      file,
      '[openshell]\nversion = 1\n[openshell.drivers.kubernetes]\nimage_pull_secrets = ["from-file"]\n',
    );
    const result = run(["check-config", ...DEV, "--config", file, "--sandbox-namespace", "sbx"], {
      OPENSHELL_SANDBOX_IMAGE_PULL_POLICY: "Always",
    });
    assert.equal(result.code, 0, result.stderr);
    const json = JSON.parse(result.stdout) as CheckConfigJson;
    assert.equal(json.valid, true);
    assert.equal(json.file, file);
    assert.deepEqual(Object.keys(json.settings).sort(), [...SETTING_KEYS].sort());
    assert.deepEqual(json.settings.namespace!.value, "sbx");
    assert.deepEqual(json.settings.namespace!.source, { kind: "flag", flag: "sandbox-namespace" });
    assert.deepEqual(json.settings.imagePullPolicy!.source, {
      kind: "env",
      name: "OPENSHELL_SANDBOX_IMAGE_PULL_POLICY",
    });
    assert.deepEqual(json.settings.imagePullSecrets!.value, ["from-file"]);
    assert.equal(json.settings.imagePullSecrets!.source.kind, "file");
    assert.equal(json.settings.imagePullSecrets!.source.line, 4);
    assert.deepEqual(json.settings.serviceAccountName!.source, { kind: "default" });
  });

  test("every row of the settings table is reachable by its flag and by its env var", () => {
    for (const key of SETTING_KEYS) {
      const setting = SETTINGS[key] as Setting<unknown>;
      if (setting.codec.type === "boolean") continue;
      const sample =
        key === "registryMirrors" ? "docker.io=m.corp/hub" : String(setting.codec.toText(setting.default));
      for (const [args, env] of [
        [[`--${setting.flag}`, sample], {}],
        [[], { [setting.env]: sample }],
      ] as [string[], Record<string, string>][]) {
        const result = run(["check-config", ...DEV, ...args], env);
        assert.equal(result.code, 0, `${key}: ${result.stderr}`);
        const json = JSON.parse(result.stdout) as CheckConfigJson;
        assert.equal(json.settings[key]!.source.kind, args.length ? "flag" : "env", key);
      }
    }
  });

  test("secrets are redacted in the output", () => {
    const result = run(["check-config", ...DEV], {
      OPENSHELL_DB_URL: "postgres://app:hunter2@127.0.0.1:5432/openshell",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /hunter2/);
    const json = JSON.parse(result.stdout) as CheckConfigJson;
    assert.equal(json.settings.dbUrl!.value, "postgres://app:REDACTED@127.0.0.1:5432/openshell");
  });

  test("an invalid value: one line, exit 2", () => {
    assertOneLineError(
      run(["check-config", ...DEV, "--sandbox-image-pull-policy", "Sometimes"]),
      /^openshell-gateway: error: invalid sandbox image pull policy "Sometimes" from flag --sandbox-image-pull-policy: must be one of Always, IfNotPresent or Never/,
    );
    assertOneLineError(
      run(["check-config", ...DEV], { OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS: "ok,Not_Ok" }),
      /env OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS: entry "Not_Ok" must be a DNS-1123 subdomain/,
    );
  });

  test("serve problems are reported in the JSON and on stderr, exit 2", () => {
    const result = run(["check-config"]);
    assert.equal(result.code, 2);
    const json = JSON.parse(result.stdout) as CheckConfigJson;
    assert.equal(json.valid, false);
    assert.equal(json.problems.length, 3);
    assert.equal(result.stderr.trim().split("\n").length, 3);
  });

  test("an unknown flag is a usage error with exit 2", () => {
    const result = run(["check-config", "--sandbox-namespcae", "x"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown option '--sandbox-namespcae'/);
    assert.match(result.stderr, /Did you mean --sandbox-namespace\?/);
  });
});

describe("render-sandbox", () => {
  test("renders a Sandbox v1beta1 by default (auto, no cluster)", () => {
    const result = run([
      "render-sandbox",
      "--name",
      "demo",
      "--image",
      "127.0.0.1:5443/team/agent:v1",
      "--sandbox-image-pull-secrets",
      "regcred, ,regcred,backup",
      "--image-pull-secret",
      "mine",
      "--sandbox-image-pull-policy",
      "IfNotPresent",
      "--env",
      "A=1=2",
      "--",
      "sleep",
      "3600",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const object = parseYaml(result.stdout) as {
      apiVersion: string;
      spec: {
        podTemplate: {
          spec: {
            imagePullSecrets: { name: string }[];
            containers: {
              imagePullPolicy: string;
              command: string[];
              env: { name: string; value: string }[];
            }[];
          };
        };
      };
    };
    assert.equal(object.apiVersion, "agents.x-k8s.io/v1beta1");
    const spec = object.spec.podTemplate.spec;
    assert.deepEqual(spec.imagePullSecrets, [{ name: "regcred" }, { name: "backup" }, { name: "mine" }]);
    assert.equal(spec.containers[0]!.imagePullPolicy, "IfNotPresent");
    assert.deepEqual(spec.containers[0]!.command, ["sleep", "3600"]);
    assert.deepEqual(spec.containers[0]!.env[0], { name: "A", value: "1=2" });
  });

  test("pod mode and JSON output, settings from env", () => {
    const result = run(["render-sandbox", "--name", "demo", "-o", "json"], {
      OPENSHELL_SANDBOX_RESOURCE: "pod",
    });
    assert.equal(result.code, 0, result.stderr);
    const object = JSON.parse(result.stdout) as { kind: string; spec: { imagePullSecrets?: unknown } };
    assert.equal(object.kind, "Pod");
    assert.equal(object.spec.imagePullSecrets, undefined);
  });

  test("v1alpha1 on request", () => {
    const result = run([
      "render-sandbox",
      "--name",
      "demo",
      "--sandbox-api-version",
      "v1alpha1",
      "-o",
      "json",
    ]);
    assert.equal(
      (JSON.parse(result.stdout) as { apiVersion: string }).apiVersion,
      "agents.x-k8s.io/v1alpha1",
    );
  });

  test("service-account secrets merge only when merging is on", () => {
    const args = [
      "render-sandbox",
      "--name",
      "demo",
      "-o",
      "json",
      "--sandbox-resource",
      "pod",
      "--service-account-pull-secret",
      "sa-cred",
    ];
    const off = JSON.parse(run(args).stdout) as { spec: { imagePullSecrets?: unknown } };
    assert.equal(off.spec.imagePullSecrets, undefined);
    const on = JSON.parse(run([...args, "--sandbox-merge-service-account-pull-secrets"]).stdout) as {
      spec: { imagePullSecrets?: unknown };
    };
    assert.deepEqual(on.spec.imagePullSecrets, [{ name: "sa-cred" }]);
  });

  test("bad request fields: one line naming the field, exit 2, nothing printed on stdout", () => {
    for (const [args, pattern] of [
      [["--name", "Demo"], /invalid name: "Demo" must be a DNS-1035 label/],
      [["--name", "demo", "--image-pull-secret", "Bad_Name"], /invalid image pull secret: "Bad_Name"/],
      [["--name", "demo", "--env", "NOEQUALS"], /invalid --env "NOEQUALS": must be KEY=VALUE/],
      [["--name", "demo", "--memory", "1GB"], /resources.limits.memory: "1GB" must be a Kubernetes quantity/],
      [
        ["--name", "demo", "--image", "Bad/Image"],
        /invalid image: "Bad\/Image" is not a valid image reference/,
      ],
      [["--name", "demo", "--sandbox-resource", "deployment"], /invalid sandbox resource kind "deployment"/],
    ] as [string[], RegExp][]) {
      const result = run(["render-sandbox", ...args]);
      assertOneLineError(result, pattern);
      assert.equal(result.stdout, "");
    }
  });

  test("--name is required", () => {
    const result = run(["render-sandbox"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /required option '--name <NAME>' not specified/);
  });
});

test("--version prints the version", () => {
  const result = run(["--version"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
});
