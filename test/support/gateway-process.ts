// The real gateway as a child process (node bin/openshell-gateway, built by `make build`): for tests
// that kill it (SIGKILL), restart it, or take its database or API server away underneath it. Ports are
// chosen once, so a restarted gateway answers on the same URL.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OpenShell } from "../../src/gen/openshell/v1/openshell_pb.js";
import { REPO_ROOT, requireCluster, waitFor } from "./cluster.js";
import { freePort } from "./ports.js";

const BIN = join(REPO_ROOT, "bin", "openshell-gateway");

export interface GatewayProcessOptions {
  namespace: string;
  /** Kubeconfig the gateway uses (default: the test bed's admin kubeconfig). */
  kubeconfig?: string;
  /** SQLite in this directory unless dbUrl is set (default: a fresh temp dir). */
  dataDir?: string;
  dbUrl?: string;
  /** Extra flags, e.g. ["--reconcile-interval-seconds", "2"]. */
  args?: string[];
  /** Extra environment for the child. */
  env?: Record<string, string>;
}

export interface Readyz {
  status: number;
  body: Record<string, unknown>;
}

/** One gateway "slot": fixed ports and data directory; start, kill and restart it as often as needed. */
export class GatewayProcess {
  readonly dataDir: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lives = 0;
  /** The last lines the gateway wrote (stdout and stderr), for failure messages. */
  private tail: string[] = [];

  private constructor(
    private readonly options: GatewayProcessOptions,
    readonly port: number,
    readonly healthPort: number,
  ) {
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "osgw-proc-"));
    mkdirSync(this.dataDir, { recursive: true });
    this.logFile = join(this.dataDir, "gateway.log");
  }

  /** Allocates ports and registers a kill of the child after the test; does not start it. */
  static async create(t: TestContext, options: GatewayProcessOptions): Promise<GatewayProcess> {
    if (!existsSync(join(REPO_ROOT, "dist", "gateway", "main.js"))) {
      throw new Error("dist/gateway/main.js is missing: run `make build` first (make test does)");
    }
    const gw = new GatewayProcess(options, await freePort(), await freePort());
    t.after(async () => {
      await gw.kill("SIGKILL");
      if (!options.dataDir) rmSync(gw.dataDir, { recursive: true, force: true });
    });
    return gw;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** A fresh client (a new HTTP/2 session), so calls after a restart do not reuse a dead connection. */
  client(): Client<typeof OpenShell> {
    return createClient(OpenShell, createGrpcTransport({ baseUrl: this.url }));
  }

  recentLog(): string {
    return this.tail.join("\n");
  }

  /** Starts the process (it must not be running) and returns once it listens; use waitReady for /readyz. */
  async start(): Promise<void> {
    if (this.running) throw new Error("the gateway is already running");
    const cluster = await requireCluster("full");
    const o = this.options;
    const args = [
      BIN,
      "--bind-address",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--health-port",
      String(this.healthPort),
      "--disable-tls",
      "--allow-unauthenticated",
      "--log-level",
      "info",
      "--kubeconfig",
      o.kubeconfig ?? cluster.kubeconfigPath,
      "--sandbox-namespace",
      o.namespace,
      "--data-dir",
      this.dataDir,
      ...(o.dbUrl ? ["--db-url", o.dbUrl] : []),
      ...(o.args ?? []),
    ];
    this.lives++;
    writeFileSync(this.logFile, `\n===== start ${this.lives} ${new Date().toISOString()}\n`, { flag: "a" });
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", ...o.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const keep = (d: Buffer) => {
      writeFileSync(this.logFile, d, { flag: "a" });
      this.tail.push(...d.toString().split("\n").filter(Boolean));
      if (this.tail.length > 40) this.tail.splice(0, this.tail.length - 40);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    await waitFor(
      () => {
        if (!this.running)
          throw new Error(`the gateway exited (code ${child.exitCode}): ${this.recentLog()}`);
        return this.readyz().then(() => true);
      },
      { timeoutMs: 60_000, intervalMs: 50, description: "the gateway's health port" },
    );
  }

  /** GET /readyz: its status and JSON body (throws when nothing answers). */
  async readyz(timeoutMs = 5000): Promise<Readyz> {
    const res = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { raw: text };
    }
    return { status: res.status, body };
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    let last: Readyz | undefined;
    try {
      await waitFor(
        async () => {
          if (!this.running) throw new Error("the gateway is not running");
          last = await this.readyz();
          return last.status === 200;
        },
        { timeoutMs, intervalMs: 50, description: "/readyz 200" },
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}; readyz ${JSON.stringify(last?.body)}; log: ${this.recentLog()}`,
        { cause: err },
      );
    }
  }

  /** Sends `signal` (default SIGKILL) and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.running) this.child!.kill(signal);
    await this.exited;
  }
}
