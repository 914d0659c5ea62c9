// Runs a command in a pod's container through pods/exec (client-node's Exec over the v5/v4 channel
// WebSocket protocol) and turns it into an async stream of stdout/stderr chunks ending with the exit code.
// stdin is written, then closed with v5's CLOSE frame (Kubernetes 1.30+ serves v5). Over v4 there is
// no way to close stdin alone: client-node then closes the whole connection, so with a pre-1.30 API
// server a command given stdin loses its output. No TTY: stdout and stderr stay separate.

import { Readable, Writable } from "node:stream";

import { Exec, type KubeConfig, type V1Status } from "@kubernetes/client-node";
// Not re-exported by the package index; needed to give the handler our own streams (its default
// streams are process.stdin/stdout/stderr, which a server-sent close frame would end).
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";

import { errorFromStatus, timeoutError } from "./client.js";
import { KubernetesError, type ExecChunk, type ExecOptions } from "./types.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `sh -c` script for a working directory: $1 is the directory, the rest is the command. */
const WORKDIR_SCRIPT = 'cd -- "$1" && shift && exec "$@"';

/**
 * The argv actually executed. pods/exec has no working directory or environment of its own, so:
 * a workdir wraps the command in `sh -c 'cd -- "$1" && shift && exec "$@"'` (the image needs a POSIX
 * sh), and environment variables prefix it with `env K=V …` (the image needs env; the values travel in
 * the exec URL, so they appear in API server audit logs: do not pass secrets this way).
 */
export function buildExecCommand(
  options: Pick<ExecOptions, "command" | "workdir" | "environment">,
): string[] {
  if (options.command.length === 0) throw new KubernetesError("exec needs a command", "Invalid");
  let argv = [...options.command];
  if (options.workdir) argv = ["sh", "-c", WORKDIR_SCRIPT, "openshell-exec", options.workdir, ...argv];
  const env = Object.entries(options.environment ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (env.length > 0) {
    for (const [name] of env) {
      if (!ENV_NAME.test(name))
        throw new KubernetesError(
          `environment variable name "${name}" is invalid: use letters, digits and _ (not starting with a digit)`,
          "Invalid",
        );
    }
    // env would read a leading NAME=VALUE or -option of the command itself as its own argument.
    if (/=|^-/.test(argv[0] ?? ""))
      throw new KubernetesError(
        `with environment variables the command may not start with "-" or contain "=": ${argv[0]}`,
        "Invalid",
      );
    argv = ["env", ...env.map(([k, v]) => `${k}=${v}`), ...argv];
  }
  return argv;
}

/**
 * The exit code from the status channel: Success → 0; NonZeroExitCode → the ExitCode cause. Anything
 * else (container not found, exec failed to start) is an error carrying the kubelet's message.
 */
export function exitCodeFromStatus(status: V1Status): number {
  if (status.status === "Success") return 0;
  if (status.reason === "NonZeroExitCode") {
    const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
    const code = Number.parseInt(cause?.message ?? "", 10);
    if (Number.isInteger(code)) return code;
  }
  throw new KubernetesError(`exec failed: ${status.message ?? status.reason ?? "unknown error"}`, "Internal");
}

/** A single-consumer async queue: producers push, the iterator pulls. */
class ChunkQueue<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: () => void } | undefined;
  private ended = false;
  private error: Error | undefined;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake();
  }

  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      const next = this.items.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.ended) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = { resolve }));
    }
  }
}

function sink(queue: ChunkQueue<ExecChunk>, type: "stdout" | "stderr"): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      queue.push({ type, data: new Uint8Array(chunk) });
      callback();
    },
  });
}

/** The WebSocket upgrade failure ("Unexpected server response: 403") as a KubernetesError. */
export function connectError(err: unknown, target: { namespace: string; name: string }): KubernetesError {
  if (err instanceof KubernetesError) return err;
  // WebSocketHandler rejects with the ws ErrorEvent ({message, error}), not an Error.
  const e = err as { message?: unknown; error?: { message?: unknown; code?: unknown } } | undefined;
  const message =
    typeof e?.message === "string" ? e.message : typeof e?.error?.message === "string" ? e.error.message : "";
  const code = /Unexpected server response: (\d+)/.exec(message)?.[1];
  const req = {
    verb: "create" as const,
    resource: "pods/exec",
    namespace: target.namespace,
    name: target.name,
  };
  if (code === "403")
    return new KubernetesError(
      `forbidden: the gateway may not exec into pod "${target.name}" in namespace ${target.namespace} (the WebSocket upgrade needs get and create on pods/exec)`,
      "Forbidden",
      403,
    );
  if (code) return errorFromStatus(Number(code), undefined, req);
  const sys = (err as { code?: unknown } | undefined)?.code ?? e?.error?.code;
  return new KubernetesError(
    `exec into pod "${target.name}" failed to connect${typeof sys === "string" ? ` (${sys})` : ""}`,
    "Unavailable",
  );
}

/** What we use of the ws WebSocket that Exec returns (its types are not installed: no @types/ws). */
interface ExecSocket {
  close(): void;
  terminate(): void;
  on(event: "close", listener: () => void): unknown;
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("exec aborted");
}

export interface ExecTarget {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 10 * 60_000;

/** Runs the command; yields stdout/stderr chunks and finally `{type: "exit", code}`. */
export async function* execInPod(
  kc: KubeConfig,
  target: ExecTarget,
  options: ExecOptions,
): AsyncGenerator<ExecChunk> {
  const argv = buildExecCommand(options);
  const queue = new ChunkQueue<ExecChunk>();
  const streams = {
    stdin: new Readable({ read() {} }),
    stdout: sink(queue, "stdout"),
    stderr: sink(queue, "stderr"),
  };
  const exec = new Exec(kc, new WebSocketHandler(kc, undefined, streams));
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  let status: V1Status | undefined;
  let socket: ExecSocket | undefined;
  let failure: Error | undefined;

  const fail = (err: Error) => {
    failure ??= err;
    socket?.terminate();
    queue.end(failure);
  };
  const timer = setTimeout(() => fail(timeoutError(timeoutMs, `exec in pod ${target.pod}`)), timeoutMs);
  const onAbort = () => fail(abortReason(options.signal));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (options.signal?.aborted) throw abortReason(options.signal);
    const stdin = options.stdin ? Readable.from([Buffer.from(options.stdin)]) : null;
    const raw: unknown = await exec.exec(
      target.namespace,
      target.pod,
      target.container,
      argv,
      streams.stdout,
      streams.stderr,
      stdin,
      false,
      (s) => (status = s),
    );
    const ws = raw as ExecSocket;
    socket = ws;
    if (failure !== undefined) ws.terminate();
    ws.on("close", () => {
      if (failure !== undefined) return;
      if (!status) {
        queue.end(
          new KubernetesError(`exec in pod "${target.pod}" ended without an exit status`, "Unavailable"),
        );
        return;
      }
      try {
        queue.push({ type: "exit", code: exitCodeFromStatus(status) });
        queue.end();
      } catch (err) {
        queue.end(err instanceof Error ? err : new Error(String(err)));
      }
    });
  } catch (err) {
    fail(failure ?? connectError(err, { namespace: target.namespace, name: target.pod }));
  }
  try {
    yield* queue.drain();
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    // The consumer may stop early (break); never leave the session running.
    socket?.close();
  }
}
