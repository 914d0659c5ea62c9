// Error mapping, redaction and the per-call timeout of the Kubernetes request function, against a
// local HTTP server (no cluster needed for these).

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { ApiException, KubeConfig } from "@kubernetes/client-node";
import { Registry } from "prom-client";

import {
  errorFromStatus,
  KubeClient,
  KubeMetrics,
  redactServerMessage,
  toKubernetesError,
} from "../../src/kubernetes/client.js";
import { chooseTarget } from "../../src/kubernetes/discovery.js";
import { buildExecCommand, connectError, exitCodeFromStatus } from "../../src/kubernetes/exec.js";
import { KubernetesError } from "../../src/kubernetes/types.js";

const req = { verb: "create" as const, resource: "sandboxes.agents.x-k8s.io", namespace: "ns", name: "s1" };

test("409 AlreadyExists keeps the server's message", () => {
  const err = errorFromStatus(
    409,
    { reason: "AlreadyExists", message: 'sandboxes.agents.x-k8s.io "s1" already exists' },
    req,
  );
  assert.equal(err.kind, "AlreadyExists");
  assert.equal(err.statusCode, 409);
  assert.equal(err.message, 'sandboxes.agents.x-k8s.io "s1" already exists');
});

test("404 is NotFound and 422 is Invalid with the server's message", () => {
  assert.equal(errorFromStatus(404, undefined, req).kind, "NotFound");
  const invalid = errorFromStatus(
    422,
    {
      message:
        'Sandbox.agents.x-k8s.io "S1" is invalid: metadata.name: Invalid value: "S1": a lowercase RFC 1123 subdomain',
    },
    req,
  );
  assert.equal(invalid.kind, "Invalid");
  assert.match(invalid.message, /metadata\.name: Invalid value: "S1"/);
});

test("403 names the verb and the resource", () => {
  const err = errorFromStatus(403, { message: 'User "x" cannot create resource "sandboxes"' }, req);
  assert.equal(err.kind, "Forbidden");
  assert.match(err.message, /may not create sandboxes\.agents\.x-k8s\.io "s1" in namespace ns/);
});

test("5xx and 429 are Unavailable", () => {
  for (const code of [429, 500, 503, 504])
    assert.equal(errorFromStatus(code, undefined, req).kind, "Unavailable");
});

test("environment values echoed in validation messages are redacted", () => {
  const msg =
    'Pod "p" is invalid: spec.containers[0].env[3].value: Invalid value: "hunter2-secret": too long, metadata.name: Invalid value: "P": bad';
  const out = redactServerMessage(msg);
  assert.ok(!out.includes("hunter2"), out);
  assert.match(out, /env\[3\]\.value: Invalid value: "\[redacted\]"/);
  assert.match(out, /metadata\.name: Invalid value: "P"/);
});

test("an ApiException is mapped by code without its body-carrying message", () => {
  const body = JSON.stringify({ kind: "Status", reason: "NotFound", message: 'pods "p" not found' });
  const err = toKubernetesError(new ApiException(404, "Not Found", body, { secret: "header" }), req);
  assert.equal(err.kind, "NotFound");
  assert.equal(err.message, 'pods "p" not found');
});

test("connection errors are Unavailable", () => {
  const err = toKubernetesError(
    Object.assign(new Error("connect ECONNREFUSED 1.2.3.4:6443"), { code: "ECONNREFUSED" }),
    req,
  );
  assert.equal(err.kind, "Unavailable");
  assert.match(err.message, /unreachable \(ECONNREFUSED\)/);
});

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

async function withServer(handler: http.RequestListener, fn: (url: string) => Promise<void>): Promise<void> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test("a call that gets no answer fails with Timeout after the configured time", async () => {
  await withServer(
    () => undefined, // never answers
    async (url) => {
      const registry = new Registry();
      const client = new KubeClient(kubeConfigFor(url), new KubeMetrics(registry), { timeoutMs: 200 });
      const started = Date.now();
      await assert.rejects(
        client.request({ verb: "list", resource: "pods", path: "/api/v1/namespaces/ns/pods" }),
        (err: unknown) =>
          err instanceof KubernetesError &&
          err.kind === "Timeout" &&
          /timed out after 0\.2s waiting for the Kubernetes API/.test(err.message),
      );
      assert.ok(Date.now() - started < 2000);
      const text = await registry.metrics();
      assert.match(
        text,
        /openshell_kubernetes_api_request_duration_seconds_count\{verb="list",resource="pods",code="timeout"\} 1/,
      );
    },
  );
});

test("requests send the bearer token and JSON, and map a 409 body", async () => {
  const seen: { auth?: string; type?: string; body: string }[] = [];
  await withServer(
    (rq, rs) => {
      let body = "";
      rq.on("data", (c: Buffer) => (body += c.toString()));
      rq.on("end", () => {
        seen.push({ auth: rq.headers.authorization, type: rq.headers["content-type"], body });
        rs.writeHead(409, { "content-type": "application/json" });
        rs.end(
          JSON.stringify({ kind: "Status", reason: "AlreadyExists", message: 'pods "p" already exists' }),
        );
      });
    },
    async (url) => {
      const client = new KubeClient(kubeConfigFor(url), undefined);
      await assert.rejects(
        client.request({
          verb: "create",
          resource: "pods",
          method: "POST",
          path: "/api/v1/namespaces/ns/pods",
          body: { a: 1 },
        }),
        (err: unknown) => err instanceof KubernetesError && err.kind === "AlreadyExists",
      );
      assert.equal(seen[0]?.auth, "Bearer t");
      assert.equal(seen[0]?.type, "application/json");
      assert.equal(seen[0]?.body, '{"a":1}');
    },
  );
});

test("a refused connection is Unavailable", async () => {
  const client = new KubeClient(kubeConfigFor("http://127.0.0.1:1"), undefined, { timeoutMs: 2000 });
  await assert.rejects(
    client.request({ verb: "get", resource: "pods", path: "/api/v1/namespaces/ns/pods/x" }),
    (err: unknown) => err instanceof KubernetesError && err.kind === "Unavailable",
  );
});

test("discovery: auto prefers v1beta1, falls back to v1alpha1, then to pods", () => {
  assert.deepEqual(chooseTarget("auto", "auto", ["v1beta1", "v1alpha1"]), {
    resource: "agent-sandbox",
    apiVersion: "v1beta1",
  });
  assert.deepEqual(chooseTarget("auto", "auto", ["v1alpha1"]), {
    resource: "agent-sandbox",
    apiVersion: "v1alpha1",
  });
  assert.deepEqual(chooseTarget("auto", "auto", []), { resource: "pod" });
  assert.deepEqual(chooseTarget("pod", "v1beta1", ["v1beta1"]), { resource: "pod" });
  assert.deepEqual(chooseTarget("agent-sandbox", "v1alpha1", ["v1beta1", "v1alpha1"]), {
    resource: "agent-sandbox",
    apiVersion: "v1alpha1",
  });
});

test("discovery: an explicit agent-sandbox that is not served is a clear error", () => {
  assert.throws(
    () => chooseTarget("agent-sandbox", "auto", []),
    (err: unknown) =>
      err instanceof KubernetesError && /not served.*--sandbox-resource pod/.test(err.message),
  );
  assert.throws(
    () => chooseTarget("agent-sandbox", "v1beta1", ["v1alpha1"]),
    (err: unknown) =>
      err instanceof KubernetesError &&
      /v1beta1 sandboxes are not served by the cluster \(it serves v1alpha1\)/.test(err.message),
  );
});

test("exec command: environment via env, workdir via sh -c", () => {
  assert.deepEqual(buildExecCommand({ command: ["echo", "ok"] }), ["echo", "ok"]);
  assert.deepEqual(buildExecCommand({ command: ["ls"], environment: { B: "2", A: "1" } }), [
    "env",
    "A=1",
    "B=2",
    "ls",
  ]);
  assert.deepEqual(buildExecCommand({ command: ["pwd"], workdir: "/tmp" }), [
    "sh",
    "-c",
    'cd -- "$1" && shift && exec "$@"',
    "openshell-exec",
    "/tmp",
    "pwd",
  ]);
  assert.throws(() => buildExecCommand({ command: ["ls"], environment: { "BAD-NAME": "x" } }), /BAD-NAME/);
  assert.throws(() => buildExecCommand({ command: [] }), /needs a command/);
});

test("exec exit status: Success is 0, NonZeroExitCode carries the code, other failures throw", () => {
  assert.equal(exitCodeFromStatus({ status: "Success" }), 0);
  assert.equal(
    exitCodeFromStatus({
      status: "Failure",
      reason: "NonZeroExitCode",
      message: "command terminated with non-zero exit code: exit status 3",
      details: { causes: [{ reason: "ExitCode", message: "3" }] },
    }),
    3,
  );
  assert.throws(
    () => exitCodeFromStatus({ status: "Failure", message: "container not found" }),
    /container not found/,
  );
});

test("exec connection failures: the ws ErrorEvent's status is mapped, 403 names the pods/exec verbs", () => {
  const target = { namespace: "ns", name: "p" };
  const forbidden = connectError({ type: "error", message: "Unexpected server response: 403" }, target);
  assert.equal(forbidden.kind, "Forbidden");
  assert.match(forbidden.message, /needs get and create on pods\/exec/);
  assert.equal(connectError({ message: "Unexpected server response: 404" }, target).kind, "NotFound");
  const refused = connectError({ error: { message: "connect ECONNREFUSED", code: "ECONNREFUSED" } }, target);
  assert.equal(refused.kind, "Unavailable");
  assert.match(refused.message, /ECONNREFUSED/);
});
