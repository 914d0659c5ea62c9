// One way to run a program under test as a child process and collect what it printed.

import { spawn } from "node:child_process";

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command argv` with only PATH and `env` in its environment; `stdin` is written and closed, unless
 * `keepStdinOpen` (script(1) ends its session when its input closes).
 */
export function runProcess(
  command: string,
  argv: readonly string[],
  options: { env?: Record<string, string>; stdin?: string; keepStdinOpen?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env: { PATH: process.env.PATH ?? "", ...options.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    if (!options.keepStdinOpen) child.stdin.end(options.stdin ?? "");
  });
}
