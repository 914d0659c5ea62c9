// The openshell.v1.OpenShell service: upstream's sandbox RPCs, as the published SDK calls them.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  DeletionOutcome,
  ExecSandboxEventSchema,
  OpenShell,
  SandboxStreamEventSchema,
  ServiceStatus,
  type ExecSandboxEvent,
  type SandboxStreamEvent,
} from "../../gen/openshell/v1/openshell_pb.js";
import type { DriverEvent } from "../../kubernetes/types.js";
import { LIMITS, keyInField } from "../../render/request.js";
import { describeValue, envVarName } from "../../validation/kubernetes-names.js";
import { VERSION } from "../../version.js";
import type { Sandboxes } from "../sandboxes.js";
import {
  TERMINAL_PHASES,
  createInputFrom,
  parseLabelSelector,
  platformEventMessage,
  sandboxMessage,
  workspaceOf,
} from "./convert.js";

/** Exec output is sent in chunks well under gRPC's default 4 MiB message limit. */
export const EXEC_CHUNK_BYTES = 256 * 1024;
export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 100;
/** Upstream's limit on one exec environment value is lifted: exec_python sends large payloads. */
const MAX_EXEC_TIMEOUT_SECONDS = 24 * 3600;
/** PATH_MAX on Linux. */
const MAX_WORKDIR_BYTES = 4096;

/**
 * Exec input that no process can receive (NUL bytes, invalid environment names) or that exceeds the
 * create limits, as one line naming the field. Environment values may be large (exec_python), not NUL.
 */
function execInputProblem(
  command: readonly string[],
  environment: Readonly<Record<string, string>>,
  workdir: string,
): string | undefined {
  if (command.length > LIMITS.commandEntries)
    return `invalid command: has ${command.length} entries; at most ${LIMITS.commandEntries}`;
  for (const [i, part] of command.entries()) {
    if (part.includes("\0"))
      return `invalid command[${i}]: ${describeValue(part)} must not contain NUL characters`;
    if (Buffer.byteLength(part) > LIMITS.commandEntry)
      return `invalid command[${i}]: ${describeValue(part)} must be at most ${LIMITS.commandEntry} bytes`;
  }
  const env = Object.entries(environment);
  if (env.length > LIMITS.environmentEntries)
    return `invalid environment: has ${env.length} entries; at most ${LIMITS.environmentEntries} are allowed`;
  for (const [key, value] of env) {
    const reason = envVarName(key);
    if (reason) return `invalid environment key: ${describeValue(key)} ${reason}`;
    if (value.includes("\0"))
      return `invalid environment[${keyInField(key)}]: ${describeValue(value)} must not contain NUL characters`;
  }
  if (workdir.includes("\0"))
    return `invalid workdir: ${describeValue(workdir)} must not contain NUL characters`;
  if (Buffer.byteLength(workdir) > MAX_WORKDIR_BYTES)
    return `invalid workdir: ${describeValue(workdir)} must be at most ${MAX_WORKDIR_BYTES} bytes`;
  return undefined;
}

function* chunks(data: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += EXEC_CHUNK_BYTES) {
    yield data.subarray(offset, offset + EXEC_CHUNK_BYTES);
  }
}

export function openShellService(sandboxes: Sandboxes): Partial<ServiceImpl<typeof OpenShell>> {
  return {
    health() {
      return { status: ServiceStatus.HEALTHY, version: VERSION };
    },

    async createSandbox(req) {
      const view = await sandboxes.create(createInputFrom(req));
      return { sandbox: sandboxMessage(view) };
    },

    async getSandbox(req) {
      return { sandbox: sandboxMessage(await sandboxes.get(workspaceOf(req.workspaceScope), req.name)) };
    },

    async listSandboxes(req) {
      if (req.pageSize < 0 || req.pageSize > MAX_PAGE_SIZE) {
        throw new ConnectError(
          `invalid page_size: ${req.pageSize} must be from 1 to ${MAX_PAGE_SIZE}`,
          Code.InvalidArgument,
        );
      }
      const all = req.workspaceScope?.selection.case === "allWorkspaces";
      const { views, nextPageToken } = await sandboxes.list({
        ...(all ? {} : { workspace: workspaceOf(req.workspaceScope) }),
        labels: parseLabelSelector(req.labelSelector),
        limit: req.pageSize || DEFAULT_PAGE_SIZE,
        ...(req.pageToken ? { pageToken: req.pageToken } : {}),
      });
      return { sandboxes: views.map(sandboxMessage), nextPageToken };
    },

    async deleteSandbox(req) {
      const { outcome, id } = await sandboxes.delete(
        workspaceOf(req.workspaceScope),
        req.name,
        req.allowMissing,
      );
      return {
        sandboxId: id,
        outcome:
          outcome === "completed"
            ? DeletionOutcome.COMPLETED
            : outcome === "accepted"
              ? DeletionOutcome.ACCEPTED
              : DeletionOutcome.ALREADY_ABSENT,
      };
    },

    async stopSandbox(req) {
      return { sandbox: sandboxMessage(await sandboxes.stop(workspaceOf(req.workspaceScope), req.name)) };
    },

    async startSandbox(req) {
      return { sandbox: sandboxMessage(await sandboxes.start(workspaceOf(req.workspaceScope), req.name)) };
    },

    async *execSandbox(req, context): AsyncGenerator<ExecSandboxEvent> {
      if (req.command.length === 0)
        throw new ConnectError("invalid command: must not be empty", Code.InvalidArgument);
      const problem = execInputProblem(req.command, req.environment, req.workdir);
      if (problem) throw new ConnectError(problem, Code.InvalidArgument);
      if (req.tty)
        throw new ConnectError(
          "unsupported field tty: interactive exec is not implemented",
          Code.Unimplemented,
        );
      const timeoutSeconds = Number(req.executionTimeout?.seconds ?? 0n);
      if (timeoutSeconds < 0 || timeoutSeconds > MAX_EXEC_TIMEOUT_SECONDS) {
        throw new ConnectError(
          `invalid execution_timeout: ${timeoutSeconds}s must be from 0 to ${MAX_EXEC_TIMEOUT_SECONDS}s`,
          Code.InvalidArgument,
        );
      }
      const stream = sandboxes.exec(workspaceOf(req.workspaceScope), req.sandbox, {
        command: req.command,
        ...(req.stdin.length ? { stdin: req.stdin } : {}),
        ...(req.workdir ? { workdir: req.workdir } : {}),
        ...(Object.keys(req.environment).length ? { environment: req.environment } : {}),
        ...(timeoutSeconds > 0 ? { timeoutMs: timeoutSeconds * 1000 } : {}),
        signal: context.signal,
      });
      for await (const chunk of stream) {
        if (chunk.type === "exit") {
          yield create(ExecSandboxEventSchema, {
            payload: { case: "exit", value: { exitCode: chunk.code } },
          });
          return;
        }
        for (const data of chunks(chunk.data)) {
          yield create(ExecSandboxEventSchema, { payload: { case: chunk.type, value: { data } } });
        }
      }
      throw new ConnectError("the exec stream ended without an exit status", Code.Unavailable);
    },

    async *watchSandbox(req, context): AsyncGenerator<SandboxStreamEvent> {
      if (req.followLogs)
        throw new ConnectError(
          "unsupported field follow_logs: log streaming is not implemented",
          Code.Unimplemented,
        );
      const workspace = workspaceOf(req.workspaceScope);
      const first = await sandboxes.get(workspace, req.sandbox);
      const queue: DriverEvent[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = sandboxes.subscribe(first.record.id, (event) => {
        queue.push(event);
        wake?.();
      });
      const done = AbortSignal.any([context.signal, sandboxes.shutdownSignal]);
      const aborted = new Promise<void>((resolve) =>
        done.addEventListener("abort", () => resolve(), { once: true }),
      );
      try {
        yield create(SandboxStreamEventSchema, {
          payload: { case: "sandbox", value: sandboxMessage(first) },
        });
        if (req.stopOnTerminal && TERMINAL_PHASES.has(first.phase)) return;
        for (;;) {
          while (queue.length === 0) {
            await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
            if (done.aborted) return;
          }
          const event = queue.shift()!;
          if (event.type === "event") {
            if (req.followEvents) {
              yield create(SandboxStreamEventSchema, {
                payload: { case: "event", value: platformEventMessage(event.event) },
              });
            }
            continue;
          }
          let view;
          try {
            view = await sandboxes.get(workspace, req.sandbox);
          } catch (err) {
            if (err instanceof ConnectError && err.code === Code.NotFound) return;
            throw err;
          }
          if (req.followStatus || req.stopOnTerminal) {
            yield create(SandboxStreamEventSchema, {
              payload: { case: "sandbox", value: sandboxMessage(view) },
            });
          }
          if (req.stopOnTerminal && TERMINAL_PHASES.has(view.phase)) return;
        }
      } finally {
        unsubscribe();
      }
    },
  };
}
