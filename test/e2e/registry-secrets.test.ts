// Registry credentials managed through the gateway on the real cluster: create with the CLI (password
// from stdin or an env var, never echoed), list without passwords, rotate, and a new sandbox pulls.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { requireCluster } from "../support/cluster.js";
import { cli, launch, setup } from "../support/gateway.js";

const CANARY = "wrong-password-canary-7f3a";

test("scenario 10: create → list → a failing pull → rotate with update → a new sandbox pulls", async (t) => {
  const cluster = await requireCluster("full");
  const env = await setup(t, {
    imagePullSecrets: [],
    registrySecretManagement: true,
    registryProbe: true,
    registryProbeCaFile: cluster.registry.caPath,
  });
  const { url } = await launch(t, env);
  const server = cluster.registry.host;
  const user = cluster.registry.user;

  const created = await cli(
    url,
    ["registry", "secret", "create", "team-cred", "--server", server, "--username", user, "--password-stdin"],
    {
      stdin: `${CANARY}\n`,
    },
  );
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout, "secret/team-cred created\n");

  const secret = await cluster.kc
    .makeApiClient(CoreV1Api)
    .readNamespacedSecret({ name: "team-cred", namespace: env.namespace });
  assert.equal(secret.type, "kubernetes.io/dockerconfigjson");
  const payload = JSON.parse(Buffer.from(secret.data![".dockerconfigjson"]!, "base64").toString()) as {
    auths: Record<string, { username: string; password: string; auth: string }>;
  };
  assert.deepEqual(Object.keys(payload.auths), [server]);
  assert.equal(payload.auths[server]!.auth, Buffer.from(`${user}:${CANARY}`).toString("base64"));
  assert.equal(secret.metadata!.labels!["openshell.ai/managed-by"], "openshell");

  const listed = await cli(url, ["registry", "secret", "list", "-o", "json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const secrets = (
    JSON.parse(listed.stdout) as { secrets: { name: string; servers: string[]; username: string }[] }
  ).secrets;
  assert.deepEqual(
    secrets.map((s) => [s.name, s.servers, s.username]),
    [["team-cred", [server], user]],
  );
  assert.doesNotMatch(listed.stdout, new RegExp(CANARY));

  const refused = await cli(url, [
    "sandbox",
    "create",
    "--name",
    "before",
    "--image",
    env.image,
    "--image-pull-secret",
    "team-cred",
    "--detach",
  ]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /ImagePullAuthFailed/);
  assert.doesNotMatch(refused.stderr, new RegExp(CANARY));

  const rotated = await cli(
    url,
    [
      "registry",
      "secret",
      "update",
      "team-cred",
      "--server",
      server,
      "--username",
      user,
      "--password-env",
      "REG_PW",
    ],
    {
      env: { REG_PW: cluster.registry.password },
    },
  );
  assert.equal(rotated.code, 0, rotated.stderr);
  await new Promise((r) => setTimeout(r, 1000)); // the gateway's watch cache sees the new data

  const ready = await cli(url, [
    "sandbox",
    "create",
    "--name",
    "after",
    "--image",
    env.image,
    "--image-pull-secret",
    "team-cred",
    "--timeout",
    "3m",
  ]);
  assert.equal(ready.code, 0, ready.stderr);
  assert.match(ready.stdout, /after\s+READY/);

  const deleted = await cli(url, ["registry", "secret", "delete", "team-cred"]);
  assert.equal(deleted.code, 0, deleted.stderr);
  const again = await cli(url, ["registry", "secret", "delete", "team-cred"]);
  assert.equal(again.code, 1);
});

test("a password on the command line is refused unless --password is explicit, and then warned about", async (t) => {
  const cluster = await requireCluster("full");
  const env = await setup(t, { registrySecretManagement: true });
  const { url } = await launch(t, env);
  const none = await cli(url, [
    "registry",
    "secret",
    "create",
    "x",
    "--server",
    cluster.registry.host,
    "--username",
    "u",
  ]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /exactly one of --password-stdin, --password-env VAR or --password VALUE/);
  const explicit = await cli(url, [
    "registry",
    "secret",
    "create",
    "x",
    "--server",
    cluster.registry.host,
    "--username",
    "u",
    "--password",
    CANARY,
  ]);
  assert.equal(explicit.code, 0, explicit.stderr);
  assert.match(explicit.stderr, /warning: a password on the command line ends up in shell history/);
  assert.doesNotMatch(explicit.stdout + explicit.stderr, new RegExp(CANARY));
});

test("management disabled: FAILED_PRECONDITION with the fix", async (t) => {
  const cluster = await requireCluster("full");
  const env = await setup(t, { registrySecretManagement: false });
  const { url } = await launch(t, env);
  const result = await cli(
    url,
    [
      "registry",
      "secret",
      "create",
      "x",
      "--server",
      cluster.registry.host,
      "--username",
      "u",
      "--password-env",
      "P",
    ],
    {
      env: { P: "p" },
    },
  );
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /registry secret management is disabled on this gateway: enable registry_secret_management/,
  );
});
