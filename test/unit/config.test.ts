import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { stringify as toToml } from "smol-toml";
import { ConfigError, loadConfig, type ConfigInputs } from "../../src/config/load.js";
import { serveProblems } from "../../src/config/serve-checks.js";
import {
  SETTING_KEYS,
  SETTINGS,
  defaultConfig,
  type Setting,
  type SettingKey,
} from "../../src/config/settings.js";

/** Three distinct valid text values per setting (flag, env, file), none equal to the default. */
const SAMPLES: Record<SettingKey, [string, string, string]> = {
  bindAddress: ["127.0.0.1", "::1", "198.18.0.1"],
  port: ["9001", "9002", "9003"],
  healthPort: ["9101", "9102", "9103"],
  metricsPort: ["9201", "9202", "9203"],
  logLevel: ["debug", "warn", "error"],
  disableTls: ["true", "true", "true"],
  tlsCert: ["/a/tls.crt", "/b/tls.crt", "/c/tls.crt"],
  tlsKey: ["/a/tls.key", "/b/tls.key", "/c/tls.key"],
  tlsClientCa: ["/a/ca.crt", "/b/ca.crt", "/c/ca.crt"],
  authTokenFile: ["/a/token", "/b/token", "/c/token"],
  allowUnauthenticated: ["true", "true", "true"],
  dbUrl: ["sqlite:/a.db", "postgres://u:p@127.0.0.1:5432/b", "sqlite:/c.db"],
  dataDir: ["/a", "/b", "/c"],
  reconcileIntervalSeconds: ["10", "20", "30"],
  orphanGraceSeconds: ["1", "2", "3"],
  kubeconfig: ["/a/kubeconfig", "/b/kubeconfig", "/c/kubeconfig"],
  namespace: ["flag-ns", "env-ns", "file-ns"],
  defaultImage: ["flag.example/a:1", "env.example/b:2", "file.example/c:3"],
  imagePullPolicy: ["Always", "IfNotPresent", "Never"],
  imagePullSecrets: ["flag-a,flag-b", "env-a", "file-a,file-b,file-c"],
  serviceAccountName: ["flag-sa", "env-sa", "file-sa"],
  mergeServiceAccountPullSecrets: ["true", "true", "true"],
  sandboxResource: ["pod", "agent-sandbox", "pod"],
  sandboxApiVersion: ["v1alpha1", "v1beta1", "v1alpha1"],
  grpcEndpoint: ["https://flag:8080", "https://env:8080", "http://file:8080"],
  clientTlsSecretName: ["flag-tls", "env-tls", "file-tls"],
  hostGatewayIp: ["198.18.0.1", "198.18.0.2", "198.18.0.3"],
  defaultRuntimeClassName: ["gvisor", "kata", "runc"],
  workspaceStorageSize: ["1Gi", "2Gi", "3Gi"],
  workspaceStorageClass: ["fast", "slow", "local"],
  pullSecretPreflight: ["warn", "off", "warn"],
  registryNodeCredentials: ["true", "true", "true"],
  registryProbe: ["true", "true", "true"],
  registryProbeCaFile: ["/a/ca.pem", "/b/ca.pem", "/c/ca.pem"],
  registryProbeRealmAllowList: ["auth.docker.io", "auth.example.com", "a.example.com,b.example.com"],
  registryProbeTimeoutSeconds: ["1", "2", "3"],
  pullFailureGraceSeconds: ["5", "10", "15"],
  registrySecretManagement: ["true", "true", "true"],
  registryMirrors: ["docker.io=flag.corp/hub", "docker.io=env.corp/hub", "quay.io=file.corp/quay"],
};

// Booleans have only one non-default value: precedence is shown by a lower source saying "false".
const BOOLEAN_SAMPLES: [string, string, string] = ["true", "false", "false"];

function samplesFor(key: SettingKey): [string, string, string] {
  return (SETTINGS[key] as Setting<unknown>).codec.type === "boolean" ? BOOLEAN_SAMPLES : SAMPLES[key];
}

function parsed(key: SettingKey, text: string): unknown {
  return (SETTINGS[key] as Setting<unknown>).codec.fromText(text);
}

/** A TOML file setting one key to the parsed form of a text value. */
function tomlFor(key: SettingKey, text: string): string {
  const setting = SETTINGS[key] as Setting<unknown>;
  assert.ok(setting.toml, `${key} has a file key`);
  const doc: Record<string, unknown> = {};
  let node = doc;
  for (const part of setting.toml.slice(0, -1)) node = node[part] = {};
  node[setting.toml.at(-1)!] = parsed(key, text);
  return toToml({ openshell: doc });
}

function inputs(parts: {
  flags?: Partial<Record<SettingKey, string[]>>;
  env?: Record<string, string>;
  file?: string;
}): ConfigInputs {
  return {
    flags: parts.flags ?? {},
    configFlag: parts.file !== undefined ? "/etc/openshell/gateway.toml" : undefined,
    env: parts.env ?? {},
    readFile: () => parts.file ?? "",
  };
}

function errorLine(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    return err.message;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration precedence: flag > env > file > default", () => {
  for (const key of SETTING_KEYS) {
    const setting = SETTINGS[key] as Setting<unknown>;
    const [flagText, envText, fileText] = samplesFor(key);

    test(`${key}: default when nothing is set`, () => {
      const { config, sources } = loadConfig(inputs({}));
      assert.deepEqual(config[key], setting.default);
      assert.deepEqual(sources[key], { kind: "default" });
    });

    test(`${key}: flag beats env and file`, () => {
      const file = setting.toml ? tomlFor(key, fileText) : undefined;
      const { config, sources } = loadConfig(
        inputs({ flags: { [key]: [flagText] }, env: { [setting.env]: envText }, ...(file ? { file } : {}) }),
      );
      assert.deepEqual(config[key], parsed(key, flagText));
      assert.deepEqual(sources[key], { kind: "flag", flag: setting.flag });
    });

    test(`${key}: env beats file`, () => {
      const file = setting.toml ? tomlFor(key, fileText) : undefined;
      const { config, sources } = loadConfig(
        inputs({ env: { [setting.env]: envText }, ...(file ? { file } : {}) }),
      );
      assert.deepEqual(config[key], parsed(key, envText));
      assert.deepEqual(sources[key], { kind: "env", name: setting.env });
    });

    const tomlPath = setting.toml;
    if (tomlPath) {
      test(`${key}: file beats default, with file:line`, () => {
        const file = tomlFor(key, fileText);
        const { config, sources } = loadConfig(inputs({ file }));
        assert.deepEqual(config[key], parsed(key, fileText));
        const source = sources[key];
        assert.equal(source.kind, "file");
        assert.equal(source.kind === "file" && source.key, `openshell.${tomlPath.join(".")}`);
        const leaf = tomlPath.at(-1)!;
        const expectedLine =
          file.split("\n").findIndex((l) => l.startsWith(`${leaf} =`) || l.endsWith(`.${leaf}]`)) + 1;
        assert.ok(expectedLine > 0);
        assert.equal(source.kind === "file" && source.line, expectedLine);
      });
    } else {
      test(`${key}: refused in the file with a clear line`, () => {
        const line = errorLine(() =>
          loadConfig(inputs({ file: '[openshell.gateway]\ndatabase_url = "postgres://u:secret@h/db"\n' })),
        );
        assert.match(line, /database_url is not allowed in \/etc\/openshell\/gateway.toml:2/);
        assert.match(line, /--db-url or OPENSHELL_DB_URL/);
        assert.ok(!line.includes("secret"));
      });
    }
  }

  test("a repeated single-valued flag: the last one wins, like kubectl", () => {
    const { config } = loadConfig(inputs({ flags: { namespace: ["first", "second"] } }));
    assert.equal(config.namespace, "second");
  });

  test("the config file comes from --config before OPENSHELL_GATEWAY_CONFIG", () => {
    const read: string[] = [];
    loadConfig({
      flags: {},
      configFlag: "/flag.toml",
      env: { OPENSHELL_GATEWAY_CONFIG: "/env.toml" },
      readFile: (p) => (read.push(p), ""),
    });
    loadConfig({
      flags: {},
      env: { OPENSHELL_GATEWAY_CONFIG: "/env.toml" },
      readFile: (p) => (read.push(p), ""),
    });
    assert.deepEqual(read, ["/flag.toml", "/env.toml"]);
  });

  test("driver keys inherit from [openshell.gateway]; the driver table wins", () => {
    const inherited = loadConfig(
      inputs({ file: '[openshell.gateway]\nsandbox_namespace = "from-gw"\ndefault_image = "busybox:1"\n' }),
    );
    assert.equal(inherited.config.namespace, "from-gw");
    assert.equal(inherited.config.defaultImage, "busybox:1");
    const both = loadConfig(
      inputs({
        file: '[openshell.gateway]\nsandbox_namespace = "from-gw"\n[openshell.drivers.kubernetes]\nnamespace = "from-driver"\n',
      }),
    );
    assert.equal(both.config.namespace, "from-driver");
  });
});

describe("list settings", () => {
  const secrets = (text: string) =>
    loadConfig(inputs({ env: { OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS: text } })).config;

  test("commas, whitespace, empties and duplicates: trimmed, dropped, first occurrence kept, order kept", () => {
    assert.deepEqual(secrets(" b , a,,b , ,c, a").imagePullSecrets, ["b", "a", "c"]);
    assert.deepEqual(secrets("").imagePullSecrets, []);
    assert.deepEqual(secrets(" , ,").imagePullSecrets, []);
  });

  test("a repeated flag adds to the list, each occurrence comma-separated", () => {
    const { config } = loadConfig(inputs({ flags: { imagePullSecrets: ["a,b", "c", "a, d"] } }));
    assert.deepEqual(config.imagePullSecrets, ["a", "b", "c", "d"]);
  });

  test("flags replace env and file lists rather than merging with them", () => {
    const { config } = loadConfig(
      inputs({
        flags: { imagePullSecrets: ["from-flag"] },
        env: { OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS: "from-env" },
        file: '[openshell.drivers.kubernetes]\nimage_pull_secrets = ["from-file"]\n',
      }),
    );
    assert.deepEqual(config.imagePullSecrets, ["from-flag"]);
  });

  test("a TOML array is normalised the same way", () => {
    const { config } = loadConfig(
      inputs({ file: '[openshell.drivers.kubernetes]\nimage_pull_secrets = [" a ", "", "b", "a"]\n' }),
    );
    assert.deepEqual(config.imagePullSecrets, ["a", "b"]);
  });

  test("32 names are accepted, 33 are refused", () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`).join(",");
    assert.equal(secrets(names(32)).imagePullSecrets.length, 32);
    const line = errorLine(() => secrets(names(33)));
    assert.match(line, /at most 32 entries \(got 33\)/);
  });

  test("a 253-character name is accepted, 254 is refused", () => {
    const long = (n: number) => `${"a".repeat(n - 2)}.b`;
    assert.deepEqual(secrets(long(253)).imagePullSecrets, [long(253)]);
    assert.match(
      errorLine(() => secrets(long(254))),
      /at most 253 characters/,
    );
  });

  test("mirror rules parse from text and from a TOML table", () => {
    const text = loadConfig(
      inputs({ flags: { registryMirrors: ["docker.io=m.corp/hub", "quay.io=m.corp/quay"] } }),
    );
    assert.deepEqual(text.config.registryMirrors, { "docker.io": "m.corp/hub", "quay.io": "m.corp/quay" });
    const file = loadConfig(
      inputs({ file: '[openshell.drivers.kubernetes.registry_mirrors]\n"docker.io" = "m.corp/hub"\n' }),
    );
    assert.deepEqual(file.config.registryMirrors, { "docker.io": "m.corp/hub" });
  });
});

describe("validation errors: one line naming the setting, the value and the source", () => {
  const cases: { name: string; inputs: ConfigInputs; expect: RegExp }[] = [
    {
      name: "pull policy from a flag",
      inputs: inputs({ flags: { imagePullPolicy: ["Sometimes"] } }),
      expect:
        /^invalid sandbox image pull policy "Sometimes" from flag --sandbox-image-pull-policy: must be one of Always, IfNotPresent or Never \(or empty\)$/,
    },
    {
      name: "pull policy is case-sensitive, as Kubernetes is",
      inputs: inputs({ env: { OPENSHELL_SANDBOX_IMAGE_PULL_POLICY: "always" } }),
      expect: /"always" from env OPENSHELL_SANDBOX_IMAGE_PULL_POLICY: must be one of/,
    },
    {
      name: "pull policy from the file names file:line",
      inputs: inputs({
        file: '[openshell]\nversion = 1\n\n[openshell.drivers.kubernetes]\nimage_pull_policy = "Nope"\n',
      }),
      expect:
        /"Nope" from file \/etc\/openshell\/gateway.toml:5 \(openshell.drivers.kubernetes.image_pull_policy\): must be one of/,
    },
    {
      name: "a pull secret name that is not a DNS subdomain",
      inputs: inputs({ env: { OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS: "good,Bad_Name" } }),
      expect:
        /^invalid sandbox image pull secrets from env OPENSHELL_SANDBOX_IMAGE_PULL_SECRETS: entry "Bad_Name" must be a DNS-1123 subdomain/,
    },
    {
      name: "a pull secret list of the wrong TOML type",
      inputs: inputs({ file: '[openshell.drivers.kubernetes]\nimage_pull_secrets = "regcred"\n' }),
      expect: /gateway.toml:2 .*must be an array of strings in the file \(got string\)/,
    },
    {
      name: "an array with a non-string entry",
      inputs: inputs({ file: "[openshell.drivers.kubernetes]\nimage_pull_secrets = [1]\n" }),
      expect: /must be an array of strings \(found "1"\)/,
    },
    {
      name: "namespace",
      inputs: inputs({ flags: { namespace: ["Sandboxes"] } }),
      expect: /invalid sandbox namespace "Sandboxes" from flag --sandbox-namespace: must be a DNS-1123 label/,
    },
    {
      name: "sandbox resource",
      inputs: inputs({ env: { OPENSHELL_SANDBOX_RESOURCE: "deployment" } }),
      expect: /invalid sandbox resource kind "deployment" .*must be one of auto, agent-sandbox or pod/,
    },
    {
      name: "boolean",
      inputs: inputs({ env: { OPENSHELL_SANDBOX_MERGE_SERVICE_ACCOUNT_PULL_SECRETS: "sure" } }),
      expect: /merge service account pull secrets "sure" from env .*: must be true or false/,
    },
    {
      name: "port out of range",
      inputs: inputs({ flags: { port: ["70000"] } }),
      expect: /invalid API port "70000" from flag --port: must be a whole number from 1 to 65535/,
    },
    {
      name: "default image",
      inputs: inputs({ flags: { defaultImage: ["Foo/Bar"] } }),
      expect:
        /invalid default sandbox image "Foo\/Bar" from flag --sandbox-image: is not a valid image reference/,
    },
    {
      name: "service account",
      inputs: inputs({ flags: { serviceAccountName: ["sa!"] } }),
      expect: /invalid sandbox service account "sa!"/,
    },
    {
      name: "callback endpoint",
      inputs: inputs({ flags: { grpcEndpoint: ["gateway:8080"] } }),
      expect:
        /invalid gateway callback endpoint "gateway:8080" from flag --grpc-endpoint: must use http:\/\/ or https:\/\//,
    },
    {
      name: "host gateway IP",
      inputs: inputs({ flags: { hostGatewayIp: ["host.local"] } }),
      expect: /must be an IPv4 or IPv6 address/,
    },
    {
      name: "mirror rule without '='",
      inputs: inputs({ flags: { registryMirrors: ["docker.io"] } }),
      expect: /registry mirrors from flag --registry-mirror: entry "docker.io" must be KEY=VALUE/,
    },
    {
      name: "control characters are shown escaped",
      inputs: inputs({ flags: { namespace: ["bad\u0007ns"] } }),
      expect: /"bad\\u0007ns"/,
    },
    {
      name: "unknown key with a suggestion and its line",
      inputs: inputs({
        file: '[openshell.drivers.kubernetes]\nnamespace = "x"\nimage_pull_secret = ["a"]\n',
      }),
      expect:
        /^unknown key openshell.drivers.kubernetes.image_pull_secret in \/etc\/openshell\/gateway.toml:3: remove it or fix the spelling \(did you mean image_pull_secrets\?\)$/,
    },
    {
      name: "unknown table",
      inputs: inputs({ file: "[openshell.drivers.docker]\nfoo = 1\n" }),
      expect: /unknown key openshell.drivers.docker in .*gateway.toml:1/,
    },
    {
      name: "unknown top-level table",
      inputs: inputs({ file: "[server]\nport = 1\n" }),
      expect: /unknown key server in .*gateway.toml:1: .*known keys here: openshell/,
    },
    {
      name: "unsupported file version",
      inputs: inputs({ file: "[openshell]\nversion = 2\n" }),
      expect: /unsupported config file version "2" in .*gateway.toml:2: this gateway reads version = 1/,
    },
    {
      name: "TOML syntax error with line and column",
      inputs: inputs({ file: '[openshell.drivers.kubernetes]\nnamespace = "x\n' }),
      expect: /^invalid config file \/etc\/openshell\/gateway.toml:2:\d+: /,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.match(
        errorLine(() => loadConfig(c.inputs)),
        c.expect,
      );
    });
  }

  test("a missing config file names the path and the fix", () => {
    const line = errorLine(() =>
      loadConfig({
        flags: {},
        configFlag: "/nope.toml",
        env: {},
        readFile: () => {
          throw Object.assign(new Error("x"), { code: "ENOENT" });
        },
      }),
    );
    assert.equal(
      line,
      "cannot read config file /nope.toml: no such file; fix the --config / OPENSHELL_GATEWAY_CONFIG path",
    );
  });

  test("a bad database URL is reported without its value", () => {
    const line = errorLine(() => loadConfig(inputs({ env: { OPENSHELL_DB_URL: "mysql://u:hunter2@h/db" } })));
    assert.match(
      line,
      /^invalid database URL \(value redacted\) from env OPENSHELL_DB_URL: must be sqlite:PATH or postgres:/,
    );
    assert.ok(!line.includes("hunter2"));
  });
});

describe("serve checks", () => {
  const loaded = (flags: Partial<Record<SettingKey, string[]>>) => loadConfig(inputs({ flags }));
  const readable = () => undefined;

  test("TLS material and client authentication are required by default", () => {
    const problems = serveProblems(loaded({}), readable);
    assert.equal(problems.length, 3);
    assert.match(
      problems[0]!,
      /TLS certificate is not set: pass --tls-cert FILE \(or OPENSHELL_TLS_CERT\), or --disable-tls/,
    );
    assert.match(problems[1]!, /TLS key is not set/);
    assert.match(
      problems[2]!,
      /no client authentication is configured: pass --tls-client-ca FILE \(mTLS\) or --auth-token-file FILE/,
    );
  });

  test("development mode is accepted when asked for explicitly", () => {
    assert.deepEqual(
      serveProblems(loaded({ disableTls: ["true"], allowUnauthenticated: ["true"] }), readable),
      [],
    );
  });

  test("mTLS or a token file counts as authentication", () => {
    const tls = { tlsCert: ["/c"], tlsKey: ["/k"] };
    assert.deepEqual(serveProblems(loaded({ ...tls, tlsClientCa: ["/ca"] }), readable), []);
    assert.deepEqual(serveProblems(loaded({ ...tls, authTokenFile: ["/t"] }), readable), []);
  });

  test("listeners on the same port are refused, naming both sources", () => {
    const problems = serveProblems(
      loaded({ disableTls: ["true"], allowUnauthenticated: ["true"], port: ["9000"], metricsPort: ["9000"] }),
      readable,
    );
    assert.deepEqual(problems, [
      "API port and metrics port are both 9000 (flag --port, flag --metrics-port): give each listener its own port",
    ]);
  });

  test("unreadable files are named with the reason", () => {
    const problems = serveProblems(
      loaded({ tlsCert: ["/missing.crt"], tlsKey: ["/k"], authTokenFile: ["/t"] }),
      (p) => (p === "/missing.crt" ? "no such file" : undefined),
    );
    assert.deepEqual(problems, [
      "TLS certificate /missing.crt (flag --tls-cert) cannot be read: no such file",
    ]);
  });

  test("a client CA without TLS is contradictory", () => {
    const problems = serveProblems(
      loaded({ disableTls: ["true"], tlsClientCa: ["/ca"], authTokenFile: ["/t"] }),
      readable,
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /client certificates need TLS/);
  });
});

test("defaults: the documented table", () => {
  const config = defaultConfig();
  assert.equal(config.namespace, "openshell");
  assert.equal(config.imagePullPolicy, "");
  assert.deepEqual(config.imagePullSecrets, []);
  assert.equal(config.serviceAccountName, "default");
  assert.equal(config.mergeServiceAccountPullSecrets, false);
  assert.equal(config.sandboxResource, "auto");
  assert.equal(config.port, 8080);
});
