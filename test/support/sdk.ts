// Upstream's published Python SDK (PyPI openshell==0.1.5), installed into a virtualenv outside the tree.
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

/** The SDK's interpreter; installing it is part of the test (a failure fails the test). */
export function sdkPython(): string {
  return execFileSync("bash", [join(ROOT, "scripts/proto-sdk-venv.sh")], { encoding: "utf8" }).trim();
}

export interface SdkFlowResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** step name → the JSON result the step printed */
  steps: Record<string, unknown>;
}

/**
 * Runs test/interop/sdk_flow.py against a plaintext gateway at `endpoint` (host:port) without blocking the
 * event loop (the gateway under test may live in this process): create (from `image`, or the gateway's
 * default when empty), wait for READY, exec, delete, wait until gone.
 */
export function runSdkFlow(options: {
  endpoint: string;
  name: string;
  image?: string;
  token?: string;
  readyTimeoutSeconds?: number;
  timeoutMs?: number;
}): Promise<SdkFlowResult> {
  const args = [
    join(ROOT, "test/interop/sdk_flow.py"),
    options.endpoint,
    options.token ?? "",
    options.image ?? "",
    options.name,
    String(options.readyTimeoutSeconds ?? 180),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(sdkPython(), args, { timeout: options.timeoutMs ?? 300_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => {
      const steps = Object.fromEntries(
        stdout
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as { step: string; result: unknown })
          .map((s) => [s.step, s.result]),
      );
      resolve({ status, stdout, stderr, steps });
    });
  });
}
