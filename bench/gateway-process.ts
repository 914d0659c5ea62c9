// The gateway under test as its own process (node bin/openshell-gateway), so its RSS is its own and the
// bench's client work does not share its event loop: plaintext, unauthenticated, on 127.0.0.1, with the
// real KubernetesDriver against the test bed and SQLite in a fresh directory.

import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OpenShell } from "../src/gen/openshell/v1/openshell_pb.js";
import { freePort } from "../test/support/ports.js";

const BIN = new URL("../bin/openshell-gateway", import.meta.url).pathname;

export interface GatewayOptions {
  readonly label: string;
  readonly namespace: string;
  readonly kubeconfig: string;
  readonly image: string;
  readonly preflight: "enforce" | "off";
  readonly logPath: string;
  /** Write a V8 CPU profile into this directory when the gateway exits. */
  readonly cpuProfDir?: string;
  /** Let SIGUSR2 write a V8 heap snapshot into this directory (it is also the process's cwd). */
  readonly heapSnapshotDir?: string;
}

export interface Memory {
  /** Resident set size now, MiB. */
  readonly rssMiB: number;
  /** Peak resident set size so far, MiB. */
  readonly peakRssMiB: number;
}

export class GatewayProcess {
  private constructor(
    readonly label: string,
    readonly url: string,
    readonly child: ChildProcess,
    private readonly dataDir: string,
    private readonly exited: Promise<number | null>,
  ) {}

  static async start(options: GatewayOptions): Promise<GatewayProcess> {
    const port = await freePort();
    const healthPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), `osgw-bench-${options.label}-`));
    const log = createWriteStream(options.logPath);
    const nodeArgs = [
      ...(options.cpuProfDir
        ? [
            "--cpu-prof",
            "--cpu-prof-dir",
            options.cpuProfDir,
            "--cpu-prof-name",
            `${options.label}.cpuprofile`,
          ]
        : []),
      ...(options.heapSnapshotDir ? ["--heapsnapshot-signal=SIGUSR2"] : []),
    ];
    const child = spawn(
      process.execPath,
      [
        ...nodeArgs,
        BIN,
        "--bind-address=127.0.0.1",
        `--port=${port}`,
        `--health-port=${healthPort}`,
        "--disable-tls",
        "--allow-unauthenticated",
        `--data-dir=${dataDir}`,
        `--kubeconfig=${options.kubeconfig}`,
        `--sandbox-namespace=${options.namespace}`,
        `--sandbox-image=${options.image}`,
        "--sandbox-image-pull-secrets=regcred",
        `--pull-secret-preflight=${options.preflight}`,
        "--log-level=warn",
      ],
      // Only PATH: no OPENSHELL_* from the caller's environment changes what is measured.
      {
        env: { PATH: process.env.PATH ?? "" },
        stdio: ["ignore", "pipe", "pipe"],
        ...(options.heapSnapshotDir ? { cwd: options.heapSnapshotDir } : {}),
      },
    );
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const gateway = new GatewayProcess(options.label, `http://127.0.0.1:${port}`, child, dataDir, exited);
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`gateway ${options.label} exited with ${child.exitCode}; see ${options.logPath}`);
      try {
        const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await gateway.stop();
        throw new Error(`gateway ${options.label} not ready after 90 s; see ${options.logPath}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return gateway;
  }

  /** A client on its own HTTP/2 connection. */
  client(): Client<typeof OpenShell> {
    return createClient(OpenShell, createGrpcTransport({ baseUrl: this.url }));
  }

  memory(): Memory {
    const status = readFileSync(`/proc/${this.child.pid}/status`, "utf8");
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return {
      rssMiB: Math.round((kib("VmRSS") / 1024) * 10) / 10,
      peakRssMiB: Math.round((kib("VmHWM") / 1024) * 10) / 10,
    };
  }

  /**
   * Writes a heap snapshot (V8 runs a full GC first, so its size is the live heap) and returns its
   * path once the file stops growing. Needs heapSnapshotDir.
   */
  async heapSnapshot(dir: string): Promise<string> {
    const before = new Set(readdirSync(dir));
    this.child.kill("SIGUSR2");
    let last = -1;
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const file = readdirSync(dir).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
      if (!file) continue;
      const size = statSync(join(dir, file)).size;
      if (size > 0 && size === last) return join(dir, file);
      last = size;
    }
    throw new Error(`no heap snapshot from gateway ${this.label} within 5 minutes`);
  }

  /** User + system CPU time the process has used, ms (clock ticks of 10 ms). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, "utf8");
    // fields after the command (which may contain spaces) start at ") "; utime and stime are 14 and 15
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }

  /** SIGTERM (the gateway's graceful shutdown, which also writes a CPU profile), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
