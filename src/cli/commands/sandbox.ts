// `openshell sandbox …`: create (with progress), list, get, delete, exec, watch, stop, start.

import { createInterface } from "node:readline/promises";
import { create, toJson } from "@bufbuild/protobuf";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Option, type Command } from "commander";
import { WorkspaceSelectorSchema } from "../../gen/openshell/datamodel/v1/datamodel_pb.js";
import { CreateSandboxExtRequestSchema, SandboxExtService } from "../../gen/openshell/ext/v1/ext_pb.js";
import {
  CreateSandboxRequestSchema,
  DeletionOutcome,
  OpenShell,
  SandboxPhase,
  SandboxSchema,
  type Sandbox,
} from "../../gen/openshell/v1/openshell_pb.js";
import { UsageError } from "../errors.js";
import { collect, gpuCount, keyValues } from "../options.js";
import { age, type Column, type OutputFormat } from "../output.js";
import { Progress, phaseName, stepFromEvent, stepFromSandbox } from "../progress.js";
import { CLI_EXIT } from "../transport.js";
import type { CliContext } from "../context.js";
import { describeValue } from "../../validation/kubernetes-names.js";

/** Parses 30s, 5m, 1h, 1h30m, or plain seconds. */
export function parseDuration(text: string, flag: string): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === "")
    throw new UsageError(`invalid --${flag} ${describeValue(text)}: use a duration such as 90s, 5m or 1h30m`);
  return ((Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0)) * 60 + Number(match[3] ?? 0)) * 1000;
}

interface CreateOptions {
  name?: string;
  image?: string;
  imagePullSecret?: string[];
  env?: string[];
  label?: string[];
  cpu?: string;
  memory?: string;
  gpu?: string | boolean;
  detach?: boolean;
  timeout: string;
  output: OutputFormat;
}

const COLUMNS: Column<Sandbox>[] = [
  { header: "NAME", value: (s) => s.metadata?.name ?? "" },
  { header: "PHASE", value: (s) => phaseName(s.status?.phase ?? SandboxPhase.UNSPECIFIED) },
  { header: "IMAGE", value: (s) => s.spec?.template?.image || "<default>" },
  {
    header: "AGE",
    value: (s) => age(s.metadata?.createdTime ? timestampMs(s.metadata.createdTime) : undefined),
  },
];

/** The stable JSON form of a sandbox (proto3 canonical JSON). */
export function sandboxJson(sandbox: Sandbox): unknown {
  return toJson(SandboxSchema, sandbox);
}

function readyCondition(sandbox: Sandbox) {
  return sandbox.status?.conditions.find((c) => c.type === "Ready" && c.status === "False");
}

export function addSandboxCommands(program: Command, ctx: CliContext): void {
  const sandbox = program.command("sandbox").alias("sandboxes").description("create and manage sandboxes");
  const output = () =>
    new Option("-o, --output <FORMAT>", "table, json or yaml")
      .choices(["table", "json", "yaml"])
      .default("table");

  sandbox
    .command("create")
    .description("create a sandbox and wait until it is READY (unless --detach)")
    .option("--name <NAME>", "sandbox name (default: generated)")
    .option("--image <IMAGE>", "image (default: the gateway's default image)")
    .option(
      "--image-pull-secret <NAME>",
      "pull secret for this sandbox, in the sandbox namespace (repeatable)",
      collect,
    )
    .option("--env <KEY=VALUE>", "environment variable (repeatable)", collect)
    .option("--label <KEY=VALUE>", "label (repeatable)", collect)
    .option("--cpu <QUANTITY>", "CPU limit, e.g. 500m or 2")
    .option("--memory <QUANTITY>", "memory limit, e.g. 512Mi")
    .option("--gpu [COUNT]", "GPUs; 1 without a count")
    .option("--detach", "return once the gateway accepted the sandbox")
    .option("--timeout <DURATION>", "how long to wait for READY", "5m")
    .addOption(output())
    .argument("[command...]", "command to run (after --); default: the image's")
    .action(async (command: string[], opts: CreateOptions) => {
      const timeoutMs = parseDuration(opts.timeout, "timeout");
      const gpu = gpuCount(opts.gpu);
      const limits: Record<string, string> = {};
      if (opts.cpu) limits.cpu = opts.cpu;
      if (opts.memory) limits.memory = opts.memory;
      const request = create(CreateSandboxRequestSchema, {
        name: opts.name ?? "",
        labels: keyValues("label", opts.label),
        workspaceScope: create(WorkspaceSelectorSchema, {
          selection: { case: "workspace", value: ctx.workspace() },
        }),
        spec: {
          environment: keyValues("env", opts.env),
          command,
          template: {
            image: opts.image ?? "",
            ...(Object.keys(limits).length ? { resources: { limits } } : {}),
          },
          ...(gpu !== undefined ? { resourceRequirements: { gpu: { count: gpu } } } : {}),
        },
      });
      const pullSecrets = opts.imagePullSecret ?? [];
      const transport = ctx.transport();
      const response = pullSecrets.length
        ? await ctx
            .client(SandboxExtService, transport)
            .createSandboxExt(
              create(CreateSandboxExtRequestSchema, { request, imagePullSecrets: pullSecrets }),
            )
        : await ctx.client(OpenShell, transport).createSandbox(request);
      const created = response.sandbox!;
      const name = created.metadata!.name;
      if (opts.detach) {
        ctx.print(opts.output, [created], COLUMNS, sandboxJson(created));
        return;
      }
      const final = await waitReady(ctx, name, timeoutMs);
      ctx.print(opts.output, [final], COLUMNS, sandboxJson(final));
    });

  sandbox
    .command("list")
    .alias("ls")
    .description("list sandboxes")
    .option("-l, --selector <K=V,...>", "only sandboxes with these labels", "")
    .option("-A, --all-workspaces", "list every workspace")
    .addOption(output())
    .action(async (opts: { selector: string; allWorkspaces?: boolean; output: OutputFormat }) => {
      const api = ctx.client(OpenShell);
      const all: Sandbox[] = [];
      let pageToken = "";
      do {
        const page = await api.listSandboxes({
          pageSize: 100,
          pageToken,
          labelSelector: opts.selector,
          workspaceScope: opts.allWorkspaces
            ? { selection: { case: "allWorkspaces", value: {} } }
            : { selection: { case: "workspace", value: ctx.workspace() } },
        });
        all.push(...page.sandboxes);
        pageToken = page.nextPageToken;
      } while (pageToken);
      ctx.print(opts.output, all, COLUMNS, { sandboxes: all.map(sandboxJson) });
    });

  sandbox
    .command("get")
    .description("show one sandbox")
    .argument("<name>")
    .addOption(output())
    .action(async (name: string, opts: { output: OutputFormat }) => {
      const { sandbox: found } = await ctx
        .client(OpenShell)
        .getSandbox({ name, workspaceScope: ctx.scope() });
      ctx.print(opts.output, [found!], COLUMNS, sandboxJson(found!));
    });

  sandbox
    .command("delete")
    .alias("rm")
    .description("delete sandboxes")
    .argument("[names...]")
    .option("--all", "delete every sandbox in the workspace (asks first unless --yes)")
    .option("-y, --yes", "do not ask for confirmation")
    .option("--ignore-not-found", "succeed when a sandbox does not exist")
    .option("--wait", "wait until the sandboxes are gone")
    .action(
      async (
        names: string[],
        opts: { all?: boolean; yes?: boolean; ignoreNotFound?: boolean; wait?: boolean },
      ) => {
        const api = ctx.client(OpenShell);
        if (opts.all && names.length) throw new UsageError("give sandbox names or --all, not both");
        if (!opts.all && names.length === 0)
          throw new UsageError("name the sandboxes to delete, or pass --all");
        let targets = names;
        if (opts.all) {
          const page = await api.listSandboxes({ pageSize: 500, workspaceScope: ctx.scope() });
          targets = page.sandboxes.map((s) => s.metadata!.name);
          if (targets.length === 0) {
            ctx.err(`no sandboxes in workspace ${ctx.workspace()}\n`);
            return;
          }
          if (
            !opts.yes &&
            !(await confirm(
              ctx,
              `delete ${targets.length} sandbox(es) in workspace ${ctx.workspace()}: ${targets.join(", ")}?`,
            ))
          ) {
            throw new UsageError("not confirmed; nothing was deleted (pass --yes to skip the question)");
          }
        }
        for (const name of targets) {
          const res = await api.deleteSandbox({
            name,
            workspaceScope: ctx.scope(),
            allowMissing: Boolean(opts.ignoreNotFound),
          });
          const word =
            res.outcome === DeletionOutcome.ALREADY_ABSENT
              ? "not found (ignored)"
              : res.outcome === DeletionOutcome.ACCEPTED
                ? "deleting"
                : "deleted";
          if (opts.wait && res.outcome === DeletionOutcome.ACCEPTED) await waitGone(ctx, name, 120_000);
          ctx.out(
            `sandbox/${name} ${opts.wait && res.outcome === DeletionOutcome.ACCEPTED ? "deleted" : word}\n`,
          );
        }
      },
    );

  sandbox
    .command("exec")
    .description("run a command in a sandbox; exits with the command's exit code")
    .argument("<name>")
    .argument("<command...>", "the command (after --)")
    .option("-e, --env <KEY=VALUE>", "environment variable (repeatable)", collect)
    .option("-w, --workdir <DIR>", "working directory")
    .option("-i, --stdin", "send standard input to the command")
    .option("--timeout <DURATION>", "stop the command after this long")
    .action(
      async (
        name: string,
        command: string[],
        opts: { env?: string[]; workdir?: string; stdin?: boolean; timeout?: string },
      ) => {
        const stdin = opts.stdin ? await readAll(process.stdin) : new Uint8Array();
        const stream = ctx.client(OpenShell).execSandbox({
          sandbox: name,
          workspaceScope: ctx.scope(),
          command,
          environment: keyValues("env", opts.env),
          workdir: opts.workdir ?? "",
          stdin,
          ...(opts.timeout
            ? { executionTimeout: durationFromMs(parseDuration(opts.timeout, "timeout")) }
            : {}),
        });
        for await (const event of stream) {
          if (event.payload.case === "stdout") ctx.outBytes(event.payload.value.data);
          else if (event.payload.case === "stderr") ctx.errBytes(event.payload.value.data);
          else if (event.payload.case === "exit") {
            ctx.setExitCode(event.payload.value.exitCode);
            return;
          }
        }
        throw new ConnectError("the exec stream ended without an exit status", Code.Unavailable);
      },
    );

  sandbox
    .command("logs")
    .description("print the sandbox's output (its main process's stdout and stderr)")
    .argument("<name>")
    .option("--tail <LINES>", "only the last LINES lines", "0")
    .action(async (name: string, opts: { tail: string }) => {
      if (!/^\d+$/.test(opts.tail))
        throw new UsageError(`invalid --tail ${describeValue(opts.tail)}: must be a whole number`);
      const res = await ctx
        .client(SandboxExtService)
        .getSandboxOutput({ name, workspaceScope: ctx.scope(), tailLines: Number(opts.tail) });
      ctx.outBytes(res.data);
      if (res.truncated) ctx.err("openshell: warning: output truncated at the gateway's limit; use --tail\n");
    });

  sandbox
    .command("watch")
    .description("follow a sandbox's status and Kubernetes events")
    .argument("<name>")
    .option("--until-ready", "stop at READY, ERROR or another settled phase")
    .action(async (name: string, opts: { untilReady?: boolean }) => {
      const stream = ctx.client(OpenShell).watchSandbox({
        sandbox: name,
        workspaceScope: ctx.scope(),
        followStatus: true,
        followEvents: true,
        stopOnTerminal: Boolean(opts.untilReady),
      });
      for await (const event of stream) {
        if (event.payload.case === "sandbox")
          ctx.out(
            `${new Date().toISOString()}  phase ${phaseName(event.payload.value.status?.phase ?? 0)}\n`,
          );
        else if (event.payload.case === "event") {
          const e = event.payload.value;
          ctx.out(
            `${e.eventTime ? new Date(timestampMs(e.eventTime)).toISOString() : ""}  ${e.type} ${e.reason}: ${e.message}\n`,
          );
        }
      }
    });

  for (const [verb, describe] of [
    ["stop", "stop a sandbox (its pod goes away; the record stays)"],
    ["start", "start a stopped sandbox again"],
  ] as const) {
    sandbox
      .command(verb)
      .description(describe)
      .argument("<name>")
      .addOption(output())
      .action(async (name: string, opts: { output: OutputFormat }) => {
        const api = ctx.client(OpenShell);
        const res =
          verb === "stop"
            ? await api.stopSandbox({ name, workspaceScope: ctx.scope() })
            : await api.startSandbox({ name, workspaceScope: ctx.scope() });
        ctx.print(opts.output, [res.sandbox!], COLUMNS, sandboxJson(res.sandbox!));
      });
  }
}

async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
    void ctx;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(parts);
}

/** Waits for READY with progress; on ERROR prints the reason, the kubelet's message and the fix. */
async function waitReady(ctx: CliContext, name: string, timeoutMs: number): Promise<Sandbox> {
  const progress = new Progress(
    process.stderr,
    Boolean(process.stderr.isTTY),
    ctx.style(),
    `sandbox/${name}`,
  );
  const deadline = AbortSignal.timeout(timeoutMs);
  let last: Sandbox | undefined;
  progress.step("provisioning");
  try {
    const stream = ctx.client(OpenShell).watchSandbox(
      {
        sandbox: name,
        workspaceScope: ctx.scope(),
        followStatus: true,
        followEvents: true,
        stopOnTerminal: true,
      },
      { signal: deadline },
    );
    for await (const event of stream) {
      if (event.payload.case === "event") {
        const step = stepFromEvent(event.payload.value);
        if (step) progress.step(step.text, step.warning);
      } else if (event.payload.case === "sandbox") {
        last = event.payload.value;
        const phase = last.status?.phase;
        if (phase === SandboxPhase.READY || phase === SandboxPhase.COMPLETED) {
          progress.finish(stepFromSandbox(last), true);
          return last;
        }
        if (phase === SandboxPhase.ERROR || phase === SandboxPhase.STOPPED) {
          const cause = readyCondition(last);
          progress.finish(phaseName(phase).toLowerCase(), false);
          throw new SandboxFailed(name, cause?.reason ?? phaseName(phase), cause?.message ?? "");
        }
      }
    }
  } catch (err) {
    if (deadline.aborted) {
      progress.finish("timed out", false);
      const cause = last ? readyCondition(last) : undefined;
      throw new WaitTimeout(name, timeoutMs, cause ? `${cause.reason}: ${cause.message}` : undefined);
    }
    throw err;
  }
  throw new ConnectError(`the watch on sandbox ${name} ended before it was ready`, Code.Unavailable);
}

async function waitGone(ctx: CliContext, name: string, timeoutMs: number): Promise<void> {
  const api = ctx.client(OpenShell);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      await api.getSandbox({ name, workspaceScope: ctx.scope() });
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) return;
      throw err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new WaitTimeout(name, timeoutMs, "still deleting");
}

/** The sandbox reached ERROR: reason code, kubelet message and fix, exit 1. */
export class SandboxFailed extends Error {
  readonly exitCode = CLI_EXIT.failure;
  constructor(
    readonly sandbox: string,
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`sandbox ${sandbox} failed: ${reason}${detail ? `: ${detail}` : ""}`);
  }
}

export class WaitTimeout extends Error {
  readonly exitCode = CLI_EXIT.timeout;
  constructor(sandbox: string, timeoutMs: number, lastCause: string | undefined) {
    super(
      `sandbox ${sandbox} was not ready after ${Math.round(timeoutMs / 1000)}s${lastCause ? ` (last: ${lastCause})` : ""}; see 'openshell sandbox watch ${sandbox}' or raise --timeout`,
    );
  }
}
