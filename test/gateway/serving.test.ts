// Serving: TLS and mTLS on the API port (gRPC and Connect JSON over HTTP/1.1), health and readiness,
// Prometheus metrics, and a graceful shutdown. Certificates are made at test time with openssl.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import { OpenShell } from "../../src/gen/openshell/v1/openshell_pb.js";
import { createLogger } from "../../src/gateway/observability.js";
import { startGateway, type RunningGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import { MemoryDriver } from "../support/memory-driver.js";
import { freePort } from "../support/ports.js";

function makeCerts(dir: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    "/CN=test-ca",
  );
  for (const who of ["server", "client"]) {
    openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${who}.key`,
      "-out",
      `${who}.csr`,
      "-subj",
      `/CN=${who}`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${who}.crt`,
      "-days",
      "1",
      "-extfile",
      `${who}.ext`,
    );
  }
}

const quiet = () => createLogger("warn", new Writable({ write: (_c, _e, cb) => cb() }));

async function start(
  dir: string,
  overrides: Partial<GatewayConfig>,
  driver = new MemoryDriver(),
): Promise<RunningGateway> {
  return startGateway(
    {
      ...defaultConfig(),
      bindAddress: "127.0.0.1",
      port: 0,
      healthPort: 0,
      metricsPort: 0,
      dataDir: dir,
      ...overrides,
    },
    { store: openStore({ dbUrl: "", dataDir: dir }), driver, log: quiet() },
  );
}

describe("mTLS", () => {
  let dir: string;
  let gateway: RunningGateway;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osgw-tls-"));
    makeCerts(dir);
    gateway = await start(dir, {
      tlsCert: join(dir, "server.crt"),
      tlsKey: join(dir, "server.key"),
      tlsClientCa: join(dir, "ca.crt"),
    });
  });
  after(async () => {
    await gateway.close(1000);
  });

  test("a client certificate signed by the CA is accepted over gRPC", async () => {
    const api = createClient(
      OpenShell,
      createGrpcTransport({
        baseUrl: `https://127.0.0.1:${gateway.port}`,
        nodeOptions: {
          ca: readFileSync(join(dir, "ca.crt")),
          cert: readFileSync(join(dir, "client.crt")),
          key: readFileSync(join(dir, "client.key")),
        },
      }),
    );
    const list = await api.listSandboxes({
      workspaceScope: { selection: { case: "workspace", value: "default" } },
    });
    assert.deepEqual(list.sandboxes, []);
  });

  test("without a client certificate the handshake is refused", async () => {
    const api = createClient(
      OpenShell,
      createGrpcTransport({
        baseUrl: `https://127.0.0.1:${gateway.port}`,
        nodeOptions: { ca: readFileSync(join(dir, "ca.crt")) },
      }),
    );
    let err: ConnectError | undefined;
    try {
      await api.health({});
    } catch (e) {
      err = ConnectError.from(e);
    }
    assert.ok(err, "the call fails");
    assert.match(err.message, /certificate required/, "refused by the TLS handshake, not by a handler");
  });

  test("Connect JSON over HTTP/1.1 on the same port (curl-able)", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: gateway.port,
          path: "/openshell.v1.OpenShell/Health",
          method: "POST",
          headers: { "content-type": "application/json" },
          ca: readFileSync(join(dir, "ca.crt")),
          cert: readFileSync(join(dir, "client.crt")),
          key: readFileSync(join(dir, "client.key")),
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve(text));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });
    assert.equal((JSON.parse(body) as { status: string }).status, "SERVICE_STATUS_HEALTHY");
  });
});

describe("health, readiness and metrics", () => {
  let gateway: RunningGateway;
  const driver = new MemoryDriver();
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "osgw-health-"));
    gateway = await start(
      dir,
      {
        disableTls: true,
        allowUnauthenticated: true,
        healthPort: await freePort(),
        metricsPort: await freePort(),
      },
      driver,
    );
  });
  after(async () => {
    await gateway.close(1000);
  });

  test("/healthz is liveness; /readyz follows the database and the Kubernetes API", async () => {
    const base = `http://127.0.0.1:${gateway.healthPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: "ready",
      database: "ok",
      kubernetes: "ok",
      version: "0.1.0",
    });
    driver.reachable = false;
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.match(((await notReady.json()) as { kubernetes: string }).kubernetes, /not reachable/);
    driver.reachable = true;
  });

  test("/metrics counts RPCs by method and code, and sandboxes by phase", async () => {
    const api = createClient(OpenShell, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));
    await api.createSandbox({
      name: "m1",
      workspaceScope: { selection: { case: "workspace", value: "default" } },
      spec: {},
    });
    await api
      .getSandbox({ name: "nope", workspaceScope: { selection: { case: "workspace", value: "default" } } })
      .catch(() => undefined);
    const text = await (await fetch(`http://127.0.0.1:${gateway.metricsPort}/metrics`)).text();
    assert.match(text, /openshell_gateway_rpc_requests_total\{method="CreateSandbox",code="ok"\} 1/);
    assert.match(text, /openshell_gateway_rpc_requests_total\{method="GetSandbox",code="not_found"\} 1/);
    assert.match(text, /openshell_gateway_sandboxes\{phase="PROVISIONING"\} 1/);
    assert.match(text, /openshell_gateway_rpc_duration_seconds_bucket/);
  });
});
