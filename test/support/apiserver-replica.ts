// A second kube-apiserver of our own, against the test bed's etcd, on a loopback port: a test may stop,
// restart or cut it off without touching the shared API server everyone else uses. It runs the shared
// server's binary with the shared server's flags (read from its command line), except: its own port on
// 127.0.0.1 (in the serving certificate's SANs), its own cert dir, no endpoint reconciler (it must not
// rewrite the `kubernetes` Service's endpoints), no identity lease (its name is per host, it would fight
// the shared server over it) and no watch cache (see startProcess). Started in its own process group, always stopped.
//
// Also a TCP proxy in front of it that a test switches between forwarding, refusing (connections reset)
// and blackholing (connections accepted, nothing ever answered).

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { promisify } from "node:util";
import { requireCluster, waitFor } from "./cluster.js";
import { freePort } from "./ports.js";

const execFileP = promisify(execFile);

/** The shared kube-apiserver's command line (binary first), from its pid file. */
function sharedApiserverCommand(): string[] {
  const pidFile = join(process.env.TESTBED_RUN ?? "/run/openshell-testbed", "kube-apiserver.pid");
  let pid: string;
  try {
    pid = readFileSync(pidFile, "utf8").trim();
  } catch {
    throw new Error(`no pid file ${pidFile}: the test bed's kube-apiserver is not running (cluster.sh up)`);
  }
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  if (!argv[0]?.endsWith("/kube-apiserver")) {
    throw new Error(`pid ${pid} from ${pidFile} is not kube-apiserver: ${argv[0] ?? "(gone)"}`);
  }
  return argv;
}

/** A kubeconfig like the admin one, whose server is `server` (https://127.0.0.1:PORT). */
export function kubeconfigFor(server: string, file: string, adminPath: string): void {
  const kc = new KubeConfig();
  kc.loadFromFile(adminPath);
  const clusters = kc.clusters.map((c) => ({ ...c, server }));
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters,
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  writeFileSync(file, out.exportConfig(), { mode: 0o600 });
}

export class ApiserverReplica {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly dir: string;
  readonly logFile: string;
  /** A kubeconfig (admin credentials) that talks to this replica directly. */
  readonly kubeconfig: string;

  private constructor(
    readonly port: number,
    private readonly adminKubeconfig: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "osgw-apiserver-"));
    this.logFile = join(this.dir, "kube-apiserver.log");
    this.kubeconfig = join(this.dir, "kubeconfig");
    kubeconfigFor(`https://127.0.0.1:${port}`, this.kubeconfig, adminKubeconfig);
  }

  /** Starts a replica (waits for /readyz); it is stopped and its files removed after `t`. */
  static async start(t: { after(fn: () => Promise<void> | void): void }): Promise<ApiserverReplica> {
    const cluster = await requireCluster("full");
    const replica = new ApiserverReplica(await freePort(), cluster.kubeconfigPath);
    t.after(async () => {
      await replica.stop();
      rmSync(replica.dir, { recursive: true, force: true });
    });
    await replica.startProcess();
    return replica;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async startProcess(): Promise<void> {
    if (this.running) return;
    const [bin, ...shared] = sharedApiserverCommand();
    const replaced = new Set([
      "--secure-port",
      "--bind-address",
      "--advertise-address",
      "--cert-dir",
      "--endpoint-reconciler-type",
      "--feature-gates",
      "--watch-cache",
    ]);
    const args = shared.filter((a) => !replaced.has(a.split("=")[0]!));
    args.push(
      `--secure-port=${this.port}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--cert-dir=${join(this.dir, "certs")}`,
      "--endpoint-reconciler-type=none",
      // Its identity lease is named after the host: it would fight the shared server over that lease.
      "--feature-gates=APIServerIdentity=false",
      // Watches straight from etcd: a custom resource's watch cache takes ~25 s to initialize after each
      // start here, which would dominate every restart.
      "--watch-cache=false",
    );
    const log = openSync(this.logFile, "a");
    // detached: its own process group, so stop() reaches anything it started.
    const child = spawn(bin!, args, { stdio: ["ignore", log, log], detached: true });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    // Ready means: a watch of Sandboxes works (a custom resource's watch cache answers 429 "storage is
    // (re)initializing" for a while after the server itself is up).
    const kubectl = (await requireCluster("full")).kubectlPath;
    // A selector that matches nothing: the same storage, without every Sandbox in the cluster as output.
    const watchPath =
      "/apis/agents.x-k8s.io/v1beta1/sandboxes?watch=true&timeoutSeconds=1&labelSelector=openshell.ai%2Freplica-probe%3Dnone";
    await waitFor(
      async () => {
        if (!this.running) throw new Error(`kube-apiserver replica exited: ${this.logTail()}`);
        await execFileP(kubectl, ["--kubeconfig", this.kubeconfig, "get", "--raw", watchPath], {
          timeout: 10_000,
          maxBuffer: 16 * 1024 * 1024,
        });
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 250, description: `kube-apiserver replica on ${this.url}` },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; log: ${this.logTail()}`);
    });
  }

  logTail(): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-15).join("\n");
    } catch {
      return "";
    }
  }

  /** SIGTERM to the process group, SIGKILL after 15 s; returns once it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const group = -child.pid!;
    try {
      process.kill(group, "SIGTERM");
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(group, "SIGKILL");
      } catch {
        // already gone
      }
    }, 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.startProcess();
  }
}

export type ProxyMode = "forward" | "refuse" | "blackhole";

/** A TCP proxy on 127.0.0.1 to `target` whose behaviour a test switches at any time. */
export class FaultProxy {
  private mode: ProxyMode = "forward";
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  static async start(t: TestContext, targetPort: number): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new FaultProxy(server, (server.address() as { port: number }).port, targetPort);
    server.on("connection", (s) => proxy.accept(s));
    t.after(() => proxy.close());
    return proxy;
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.once("close", () => this.sockets.delete(client));
    client.on("error", () => undefined);
    if (this.mode === "refuse") return void client.resetAndDestroy();
    if (this.mode === "blackhole") return; // accepted, read, never answered
    const upstream = connect(this.targetPort, "127.0.0.1");
    this.sockets.add(upstream);
    upstream.once("close", () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.once("close", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /**
   * refuse: open connections are reset and new ones too. blackhole: open connections stop moving data
   * (both directions) and new ones are accepted and never answered. forward: normal again (for new
   * connections; the frozen ones are reset).
   */
  setMode(mode: ProxyMode): void {
    this.mode = mode;
    for (const s of [...this.sockets]) {
      if (mode === "blackhole") {
        s.unpipe();
        s.pause();
      } else {
        s.resetAndDestroy();
      }
    }
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
