// Entry point of `openshell-gateway`: the server (no subcommand), check-config and render-sandbox.

import { Command } from "commander";
import { addConfigFlags, configInputsFrom } from "../config/flags.js";
import { loadConfig } from "../config/load.js";
import { assertCanServe } from "../config/serve-checks.js";
import { runMain } from "../cli/errors.js";
import { VERSION } from "../version.js";
import { checkConfigAction } from "./commands/check-config.js";
import { addRenderSandboxOptions, renderSandboxAction } from "./commands/render-sandbox.js";
import { serve } from "./serve.js";

export function buildProgram(env: NodeJS.ProcessEnv): Command {
  const program = new Command("openshell-gateway")
    .description("OpenShell gateway: provisions agent sandboxes on Kubernetes")
    .version(VERSION, "--version", "print the version")
    .showSuggestionAfterError()
    // Program flags only before a subcommand, so each subcommand reads its own copy of the config flags.
    .enablePositionalOptions()
    .exitOverride();
  addConfigFlags(program).action(async () => {
    const loaded = loadConfig(configInputsFrom(program, env));
    assertCanServe(loaded);
    await serve(loaded.config);
  });

  const check = new Command("check-config")
    .description("validate the configuration and print the effective values with their sources as JSON")
    .exitOverride();
  addConfigFlags(check).action(() => {
    process.exitCode = checkConfigAction(check, env);
  });
  program.addCommand(check);

  const render = new Command("render-sandbox")
    .description("print the Kubernetes object the driver would create for a sandbox (no cluster needed)")
    .exitOverride();
  addConfigFlags(addRenderSandboxOptions(render)).action((args: string[]) => {
    renderSandboxAction(render, args, env);
  });
  program.addCommand(render);
  return program;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  await runMain("openshell-gateway", async () => {
    await buildProgram(env).parseAsync([...argv], { from: "user" });
  });
}
