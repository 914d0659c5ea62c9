// `openshell-gateway render-sandbox`: prints exactly what the driver would create for a request, like
// `helm template`. It never contacts a cluster: `auto` settings resolve to agent-sandbox v1beta1.

import { randomUUID } from "node:crypto";
import { Option, type Command } from "commander";
import { stringify as toYaml } from "yaml";
import { configInputsFrom } from "../../config/flags.js";
import { loadConfig } from "../../config/load.js";
import type { GatewayConfig } from "../../config/settings.js";
import { UsageError } from "../../cli/errors.js";
import { collect, gpuCount, keyValues } from "../../cli/options.js";
import { formatFieldError, validateSandboxRequest, type SandboxRequest } from "../../render/request.js";
import { renderSandbox, type RenderTarget } from "../../render/sandbox.js";

export function addRenderSandboxOptions(command: Command): Command {
  return command
    .requiredOption("--name <NAME>", "sandbox name (a DNS-1035 label)")
    .option("--id <UUID>", "sandbox id (default: a new random UUID)")
    .option("--workspace <NAME>", "workspace (default: default)")
    .option("--image <IMAGE>", "sandbox image (default: the configured default image)")
    .option("--image-pull-secret <NAME>", "per-sandbox pull secret (repeatable)", collect)
    .option(
      "--service-account-pull-secret <NAME>",
      "a pull secret the sandbox service account lists, as the gateway would read it (repeatable; used when merging is on)",
      collect,
    )
    .option("--env <KEY=VALUE>", "environment variable (repeatable)", collect)
    .option("--label <KEY=VALUE>", "pod label (repeatable)", collect)
    .option("--annotation <KEY=VALUE>", "pod annotation (repeatable)", collect)
    .option("--cpu <QUANTITY>", "CPU limit, e.g. 500m or 2")
    .option("--memory <QUANTITY>", "memory limit, e.g. 512Mi")
    .option("--gpu [COUNT]", "GPUs (nvidia.com/gpu); 1 when given without a count")
    .option("--runtime-class-name <NAME>", "runtime class for this sandbox")
    .option("--node-selector <KEY=VALUE>", "node selector entry (repeatable)", collect)
    .addOption(new Option("-o, --output <FORMAT>", "output format").choices(["yaml", "json"]).default("yaml"))
    .argument("[command...]", "command to run in the sandbox (after --)");
}

interface RenderOptions {
  name: string;
  id?: string;
  workspace?: string;
  image?: string;
  imagePullSecret?: string[];
  serviceAccountPullSecret?: string[];
  env?: string[];
  label?: string[];
  annotation?: string[];
  cpu?: string;
  memory?: string;
  gpu?: string | boolean;
  runtimeClassName?: string;
  nodeSelector?: string[];
  output: "yaml" | "json";
}

export function requestFromOptions(opts: RenderOptions, command: readonly string[]): SandboxRequest {
  const gpu = gpuCount(opts.gpu);
  const limits = { ...(opts.cpu ? { cpu: opts.cpu } : {}), ...(opts.memory ? { memory: opts.memory } : {}) };
  return {
    id: opts.id ?? randomUUID(),
    name: opts.name,
    ...(opts.workspace ? { workspace: opts.workspace } : {}),
    ...(opts.image ? { image: opts.image } : {}),
    environment: keyValues("env", opts.env),
    labels: keyValues("label", opts.label),
    annotations: keyValues("annotation", opts.annotation),
    nodeSelector: keyValues("node-selector", opts.nodeSelector),
    ...(Object.keys(limits).length ? { resources: { limits } } : {}),
    ...(gpu !== undefined ? { gpu } : {}),
    ...(opts.runtimeClassName ? { runtimeClassName: opts.runtimeClassName } : {}),
    ...(command.length ? { command: [...command] } : {}),
    imagePullSecrets: opts.imagePullSecret ?? [],
  };
}

/** Without a cluster, auto resolves to the agent-sandbox resource at its newest version. */
export function offlineTarget(config: GatewayConfig): RenderTarget {
  if (config.sandboxResource === "pod") return { resource: "pod" };
  return {
    resource: "agent-sandbox",
    apiVersion: config.sandboxApiVersion === "v1alpha1" ? "v1alpha1" : "v1beta1",
  };
}

export function renderSandboxAction(command: Command, args: readonly string[], env: NodeJS.ProcessEnv): void {
  const { config } = loadConfig(configInputsFrom(command, env));
  const opts = command.opts<RenderOptions>();
  const request = requestFromOptions(opts, args);
  const errors = validateSandboxRequest(request);
  if (errors.length > 0) throw new UsageError(errors.map(formatFieldError).join("; "));
  const { object } = renderSandbox({
    request,
    settings: config,
    target: offlineTarget(config),
    serviceAccountPullSecrets: opts.serviceAccountPullSecret ?? [],
  });
  process.stdout.write(
    opts.output === "json" ? `${JSON.stringify(object, null, 2)}\n` : toYaml(object, { version: "1.1" }),
  );
}
