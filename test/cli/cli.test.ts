// The `openshell` CLI as a user runs it (the built bin/), against a gateway over real gRPC.
// This file is the fast tier (in-memory driver); test/testbed/ repeats the main paths on the real cluster.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { defaultConfig } from "../../src/config/settings.js";
import { createLogger } from "../../src/gateway/observability.js";
import { startGateway, type RunningGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import type { SandboxObject } from "../../src/render/sandbox.js";
import { MemoryDriver } from "../support/memory-driver.js";
import { runProcess, type RunResult } from "../support/process.js";

const BIN = new URL("../../bin/openshell", import.meta.url).pathname;
const TOKEN = "cli-test-token";

function run(
  args: string[],
  env: Record<string, string>,
  options: { tty?: boolean; stdin?: string } = {},
): Promise<RunResult> {
  // A pseudo-terminal through util-linux `script` when tty is asked for; plain pipes otherwise.
  const [command, argv] = options.tty
    ? [
        "script",
        [
          "-qefc",
          [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" "),
          "/dev/null",
        ],
      ]
    : [process.execPath, [BIN, ...args]];
  return runProcess(command, argv, { env, stdin: options.stdin, keepStdinOpen: options.tty });
}

/** Replaces ids, times and ages so that golden output compares across runs. */
function normalise(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
    .replace(/\b\d+s\b/g, "<age>");
}

describe("openshell CLI (fast tier)", () => {
  let gateway: RunningGateway;
  let driver: MemoryDriver;
  let env: Record<string, string>;
  let home: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "openshell-cli-"));
    writeFileSync(join(home, "token"), TOKEN);
    driver = new MemoryDriver();
    const log = createLogger("warn", new Writable({ write: (_c, _e, cb) => cb() }));
    gateway = await startGateway(
      {
        ...defaultConfig(),
        bindAddress: "127.0.0.1",
        port: 0,
        disableTls: true,
        authTokenFile: join(home, "token"),
        dataDir: home,
      },
      { store: openStore({ dbUrl: "", dataDir: home }), driver, log },
    );
    env = {
      XDG_CONFIG_HOME: join(home, "config"),
      OPENSHELL_TOKEN: TOKEN,
      OPENSHELL_GATEWAY: `http://127.0.0.1:${gateway.port}`,
    };
  });
  after(async () => {
    await gateway.close(1000);
  });

  test("create --detach, then list as a table and as JSON (golden)", async () => {
    const created = await run(
      ["sandbox", "create", "--name", "one", "--image", "127.0.0.1:5443/team/agent:v1", "--detach"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    assert.equal(
      normalise(created.stdout),
      "NAME   PHASE          IMAGE                          AGE\none    PROVISIONING   127.0.0.1:5443/team/agent:v1   <age>\n",
    );
    const json = await run(["sandbox", "get", "one", "-o", "json"], env);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as {
      metadata: { name: string; workspace: string };
      status: { phase: string };
    };
    assert.equal(parsed.metadata.name, "one");
    assert.equal(parsed.metadata.workspace, "default");
    assert.equal(parsed.status.phase, "SANDBOX_PHASE_PROVISIONING");
    assert.equal(
      normalise(json.stdout),
      `{
  "metadata": {
    "id": "<uuid>",
    "name": "one",
    "resourceVersion": "1",
    "workspace": "default",
    "createdTime": "<time>"
  },
  "spec": {
    "template": {
      "image": "127.0.0.1:5443/team/agent:v1"
    }
  },
  "status": {
    "phase": "SANDBOX_PHASE_PROVISIONING"
  }
}
`,
    );
  });

  test("create waits for READY with plain progress lines when not on a terminal", async () => {
    const pending = run(["sandbox", "create", "--name", "waiter", "--image-pull-secret", "team-cred"], env);
    await waitFor(() => driver.objects.has("waiter"));
    driver.setPhase("waiter", "READY");
    const result = await pending;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stderr.trim().split("\n"), [
      "sandbox/waiter: provisioning",
      "sandbox/waiter: ready",
    ]);
    const object = driver.objects.get("waiter")!.object as SandboxObject;
    assert.deepEqual(object.spec.podTemplate.spec.imagePullSecrets, [{ name: "team-cred" }]);
  });

  test("create on a terminal draws one live line and finishes with a check mark", async () => {
    const pending = run(["sandbox", "create", "--name", "ttywait", "--no-color"], env, { tty: true });
    await waitFor(() => driver.objects.has("ttywait"));
    driver.setPhase("ttywait", "READY");
    const result = await pending;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    // script(1) merges both streams into its output.
    const clearLine = "\r\u001b[2K";
    assert.ok(result.stdout.includes(`${clearLine}`), "redraws one line in place");
    assert.match(result.stdout.replaceAll(clearLine, "<CL>"), /<CL>. sandbox\/ttywait: provisioning/);
    assert.match(result.stdout.replaceAll(clearLine, "<CL>"), /<CL>✓ sandbox\/ttywait: ready \(\d+s\)/);
  });

  test("a sandbox that fails prints the reason and exits 1", async () => {
    const pending = run(["sandbox", "create", "--name", "broken"], env);
    await waitFor(() => driver.objects.has("broken"));
    driver.setPhase("broken", "ERROR", {
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "ImagePullAuthFailed",
          message: "401 Unauthorized",
          transitionTimeMs: Date.now(),
        },
      ],
    });
    const result = await pending;
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /openshell: error: sandbox broken failed: ImagePullAuthFailed: 401 Unauthorized\n$/,
    );
  });

  test("exec streams output and returns the remote exit code", async () => {
    await run(["sandbox", "create", "--name", "runner", "--detach"], env);
    driver.setPhase("runner", "READY");
    const ok = await run(["sandbox", "exec", "runner", "--", "echo", "ok"], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "ok\n");
    const failing = await run(["sandbox", "exec", "runner", "--", "sh", "-c", "echo oops >&2; exit 7"], env);
    assert.equal(failing.code, 7);
    assert.equal(failing.stderr, "oops\n");
    const withStdin = await run(["sandbox", "exec", "-i", "runner", "--", "cat"], env, { stdin: "piped in" });
    assert.equal(withStdin.stdout, "piped in");
  });

  test("gateway errors map to one line and an exit code", async () => {
    const missing = await run(["sandbox", "get", "nope"], env);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      'openshell: error: not found: sandbox "nope" not found in workspace "default"\n',
    );
    const invalid = await run(["sandbox", "create", "--name", "Bad_Name", "--detach"], env);
    assert.equal(invalid.code, 2);
    assert.match(
      invalid.stderr,
      /^openshell: error: invalid argument: invalid name: "Bad_Name" must be a DNS-1035 label/,
    );
    const unauth = await run(["sandbox", "list"], { ...env, OPENSHELL_TOKEN: "wrong" });
    assert.equal(unauth.code, 1);
    assert.equal(unauth.stderr, "openshell: error: not authenticated: the bearer token is not valid\n");
    const unreachable = await run(["sandbox", "list"], { ...env, OPENSHELL_GATEWAY: "http://127.0.0.1:9" });
    assert.equal(unreachable.code, 3);
    assert.match(unreachable.stderr, /cannot reach the gateway at http:\/\/127.0.0.1:9/);
    for (const r of [missing, invalid, unauth, unreachable]) assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("delete --all asks unless --yes; without a terminal it refuses", async () => {
    const refused = await run(["sandbox", "delete", "--all"], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /not confirmed; nothing was deleted/);
    const before = driver.objects.size;
    assert.ok(before > 0);
    const yes = await run(["sandbox", "delete", "--all", "--yes"], env);
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stdout, /sandbox\/one deleting/);
  });

  test("named gateways are stored where the Python SDK reads them", async () => {
    const url = env.OPENSHELL_GATEWAY!;
    const plain = { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME! };
    const add = await run(
      ["gateway", "add", "local", "--url", url, "--token-file", join(home, "token")],
      plain,
    );
    assert.equal(add.code, 0, add.stderr);
    const metadata = JSON.parse(
      readFileSync(join(env.XDG_CONFIG_HOME!, "openshell/gateways/local/metadata.json"), "utf8"),
    ) as Record<string, string>;
    assert.deepEqual(metadata, { gateway_endpoint: url, auth_mode: "oidc" });
    assert.equal(
      readFileSync(join(env.XDG_CONFIG_HOME!, "openshell/active_gateway"), "utf8").trim(),
      "local",
    );
    const listed = await run(["gateway", "list"], plain);
    assert.equal(listed.stdout, `CURRENT   NAME    URL\n*         local   ${url}\n`);
    const version = await run(["version"], plain);
    assert.equal(version.code, 0, version.stderr);
    assert.match(
      version.stdout,
      /^client: \d+\.\d+\.\d+\ngateway: \d+\.\d+\.\d+ \(http:\/\/127\.0\.0\.1:\d+\)\n$/,
    );
  });

  test("logs prints the sandbox's output; a bad --tail is a usage error", async () => {
    await run(["sandbox", "create", "--name", "talker", "--detach"], env);
    const out = await run(["sandbox", "logs", "talker", "--tail", "10"], env);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, "log of talker\n");
    const bad = await run(["sandbox", "logs", "talker", "--tail", "ten"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid --tail "ten": must be a whole number/);
  });

  test("completion scripts list the commands", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const result = await run(["completion", shell], {});
      assert.equal(result.code, 0);
      assert.match(result.stdout, /sandbox/);
      assert.match(result.stdout, /image-pull-secret/);
    }
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
