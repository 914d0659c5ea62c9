// Smoke check (not a test): can upstream's Python SDK (openshell==0.1.5) talk to
// a Connect-ES gRPC server built from our src/gen?
//
//   bash scripts/proto-sdk-venv.sh                       # once: venv with the SDK
//   node --import tsx scripts/proto-smoke-sdk.ts         # plaintext h2c
//   node --import tsx scripts/proto-smoke-sdk.ts --tls   # TLS, SDK trusts a throwaway CA
//   node --import tsx scripts/proto-smoke-sdk.ts --mtls  # TLS + required client certificate
//
// The SDK's Python interpreter is $OPENSHELL_SDK_PYTHON, or
// ${OPENSHELL_SDK_VENV:-/var/cache/openshell-testbed/sdk-venv}/bin/python.
// Listens on 127.0.0.1 (random port) only. Exit 0 when every SDK call succeeded.

import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { create, toJson, type JsonValue, type Message } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

import {
  DeletionOutcome,
  OpenShell,
  SandboxPhase,
  SandboxSchema,
  ServiceStatus,
} from "../src/gen/openshell/v1/openshell_pb.js";

type Mode = "plaintext" | "tls" | "mtls";
const mode: Mode = process.argv.includes("--mtls")
  ? "mtls"
  : process.argv.includes("--tls")
    ? "tls"
    : "plaintext";
const python =
  process.env.OPENSHELL_SDK_PYTHON ??
  path.join(process.env.OPENSHELL_SDK_VENV ?? "/var/cache/openshell-testbed/sdk-venv", "bin", "python");
const TOKEN = "smoke-token";

// What the SDK put on the wire, for the report.
const seen: { method: string; headers: Record<string, string>; request: JsonValue }[] = [];
function record(method: string, ctx: HandlerContext, request: Message): void {
  const headers: Record<string, string> = {};
  ctx.requestHeader.forEach((value, key) => {
    headers[key] = key === "authorization" ? value.replace(/Bearer .+/, "Bearer <redacted>") : value;
  });
  // Proto JSON omits default values, i.e. shows exactly the fields that were on the wire.
  seen.push({ method, headers, request: toJson(ctx.method.input, request) });
}

const sandbox = (name: string, phase: SandboxPhase) =>
  create(SandboxSchema, {
    metadata: {
      id: "11111111-2222-4333-8444-555555555555",
      name,
      workspace: "default",
      labels: { team: "smoke" },
      createdTime: timestampFromMs(Date.now()),
    },
    spec: {},
    status: { phase, currentPolicyVersion: 1, conditions: [{ type: "Ready", status: "True" }] },
  });

const routes = (router: ConnectRouter) =>
  router.service(OpenShell, {
    health(req, ctx) {
      record("Health", ctx, req);
      return { status: ServiceStatus.HEALTHY, version: "smoke-0.0.0" };
    },
    createSandbox(req, ctx) {
      record("CreateSandbox", ctx, req);
      return { sandbox: sandbox(req.name || "smoke-sandbox", SandboxPhase.PROVISIONING) };
    },
    getSandbox(req, ctx) {
      record("GetSandbox", ctx, req);
      if (req.name === "missing") throw new ConnectError(`sandbox ${req.name} not found`, Code.NotFound);
      return { sandbox: sandbox(req.name, SandboxPhase.READY) };
    },
    listSandboxes(req, ctx) {
      record("ListSandboxes", ctx, req);
      return { sandboxes: [sandbox("a", SandboxPhase.READY), sandbox("b", SandboxPhase.STOPPED)] };
    },
    deleteSandbox(req, ctx) {
      record("DeleteSandbox", ctx, req);
      return { outcome: DeletionOutcome.COMPLETED, sandboxId: "11111111-2222-4333-8444-555555555555" };
    },
    async *execSandbox(req, ctx) {
      record("ExecSandbox", ctx, req);
      yield { payload: { case: "stdout", value: { data: new TextEncoder().encode(req.command.join(" ")) } } };
      await new Promise((resolve) => setTimeout(resolve, 10)); // chunks arrive over time
      yield { payload: { case: "stderr", value: { data: new TextEncoder().encode("warn\n") } } };
      yield { payload: { case: "exit", value: { exitCode: 7 } } };
    },
  });

// The SDK side. Prints one JSON line per call.
const PY = String.raw`
import json, pathlib, sys
import openshell
from openshell import SandboxClient, TlsConfig
endpoint, mode, certs, token = sys.argv[1:5]
tls = None
if mode == "tls":
    tls = TlsConfig(ca_path=pathlib.Path(certs, "ca.crt"))
elif mode == "mtls":
    tls = TlsConfig(ca_path=pathlib.Path(certs, "ca.crt"), cert_path=pathlib.Path(certs, "client.crt"),
                    key_path=pathlib.Path(certs, "client.key"))
def out(name, value):
    print(json.dumps({"call": name, "result": value}), flush=True)
with SandboxClient(endpoint, tls=tls, bearer_token=token, timeout=5) as c:
    h = c.health()
    out("health", {"status": h.status, "version": h.version})
    s = c.create(workspace="default", name="smoke-sandbox", labels={"team": "smoke"})
    out("create", {"id": s.id, "name": s.name, "phase": s.phase})
    r = c.wait_ready("smoke-sandbox", workspace="default", timeout_seconds=5)
    out("wait_ready", {"phase": r.phase, "conditions": len(r.conditions)})
    out("list", [x.name for x in c.list_all(workspace="default")])
    e = c.exec("smoke-sandbox", ["echo", "hi"], workspace="default", timeout_seconds=3)
    out("exec", {"exit_code": e.exit_code, "stdout": e.stdout, "stderr": e.stderr})
    d = c.delete("smoke-sandbox", workspace="default")
    out("delete", {"outcome": d.outcome.name, "sandbox_id": d.sandbox_id})
    try:
        c.get("missing", workspace="default")
        out("get_missing", "unexpected success")
    except openshell.GatewayError as err:
        out("get_missing", {"code": err.code().name, "details": err.details()})
# The high-level context manager resolves the gateway from
# $XDG_CONFIG_HOME/openshell/gateways/$OPENSHELL_GATEWAY/ (written by the parent).
with openshell.Sandbox(workspace="default", name="ctx-sandbox", timeout=5, ready_timeout_seconds=5) as sb:
    r = sb.exec(["true"])
    out("Sandbox()", {"id": sb.id, "phase": sb.sandbox.phase, "exit_code": r.exit_code})
print("SDK-SMOKE-OK", openshell.__version__)
`;

function makeCerts(dir: string): void {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=smoke-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  );
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    run(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=smoke-${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    );
  }
}

async function main(): Promise<number> {
  const certs = mkdtempSync(path.join(tmpdir(), "proto-smoke-"));
  try {
    const handler = connectNodeAdapter({
      routes,
      interceptors: [
        (next) => async (req) => {
          // Health is unauthenticated upstream; everything else wants the bearer.
          if (req.method.name !== "Health" && req.header.get("authorization") !== `Bearer ${TOKEN}`) {
            throw new ConnectError("missing bearer token", Code.Unauthenticated);
          }
          return next(req);
        },
      ],
    });
    let server: http2.Http2Server | http2.Http2SecureServer;
    if (mode === "plaintext") {
      server = http2.createServer(handler);
    } else {
      makeCerts(certs);
      const read = (f: string) => readFileSync(path.join(certs, f));
      server = http2.createSecureServer(
        {
          key: read("server.key"),
          cert: read("server.crt"),
          ca: read("ca.crt"),
          requestCert: mode === "mtls",
          rejectUnauthorized: mode === "mtls",
          allowHTTP1: true,
        },
        handler,
      );
    }
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    console.log(`server: Connect-ES (${mode}) on 127.0.0.1:${port}`);

    // Gateway registration the way the upstream CLI leaves it on disk, for
    // SandboxClient.from_active_cluster() / openshell.Sandbox().
    const gatewayDir = path.join(certs, "config", "openshell", "gateways", "smoke");
    mkdirSync(path.join(gatewayDir, "mtls"), { recursive: true });
    const scheme = mode === "plaintext" ? "http" : "https";
    writeFileSync(
      path.join(gatewayDir, "metadata.json"),
      JSON.stringify({ gateway_endpoint: `${scheme}://127.0.0.1:${port}`, auth_mode: "oidc" }),
    );
    // No expires_at: the SDK treats the token as fresh and never contacts an IdP.
    writeFileSync(path.join(gatewayDir, "oidc_token.json"), JSON.stringify({ access_token: TOKEN }));
    if (mode !== "plaintext")
      copyFileSync(path.join(certs, "ca.crt"), path.join(gatewayDir, "mtls", "ca.crt"));
    if (mode === "mtls") {
      copyFileSync(path.join(certs, "client.crt"), path.join(gatewayDir, "mtls", "tls.crt"));
      copyFileSync(path.join(certs, "client.key"), path.join(gatewayDir, "mtls", "tls.key"));
    }

    const child = spawn(python, ["-c", PY, `127.0.0.1:${port}`, mode, certs, TOKEN], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, XDG_CONFIG_HOME: path.join(certs, "config"), OPENSHELL_GATEWAY: "smoke" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
    clearTimeout(timer);
    server.close();

    console.log("--- SDK output");
    process.stdout.write(stdout);
    if (stderr) console.log("--- SDK stderr\n" + stderr);
    console.log("--- what the SDK sent");
    for (const s of seen) console.log(JSON.stringify(s));
    const ok = code === 0 && stdout.includes("SDK-SMOKE-OK");
    console.log(ok ? `SMOKE OK (${mode})` : `SMOKE FAILED (${mode}, python exit ${code})`);
    return ok ? 0 : 1;
  } finally {
    rmSync(certs, { recursive: true, force: true });
  }
}

process.exitCode = await main();
