// Entry point of `openshell`, the client CLI.

import { Argument, Command, CommanderError, Option } from "commander";
import { ConnectError } from "@connectrpc/connect";
import { VERSION } from "../version.js";
import { addGatewayCommands } from "./commands/gateway.js";
import { addSandboxCommands } from "./commands/sandbox.js";
import { addRegistryCommands } from "./commands/registry.js";
import { addDoctorCommand } from "./commands/doctor.js";
import { CliContext, type GlobalOptions } from "./context.js";
import { exitCodeOf } from "./errors.js";
import { completionScript } from "./completion.js";
import { CLI_EXIT, describeRpcError } from "./transport.js";

const EXIT_HELP = `
Exit codes:
  0  success (for 'sandbox exec': the command's own exit code)
  1  the gateway refused or the operation failed (e.g. the sandbox reached ERROR)
  2  bad input: an invalid flag, argument or field
  3  the gateway cannot be reached
  4  timed out waiting (sandbox create/delete --wait)

Environment:
  OPENSHELL_GATEWAY   gateway URL or configured gateway name (also read by the Python SDK)
  OPENSHELL_TOKEN     bearer token
  NO_COLOR            disable colours
`;

export function buildProgram(ctx: CliContext): Command {
  const program = new Command("openshell")
    .description("Create and manage agent sandboxes through an OpenShell gateway")
    .version(VERSION, "--version", "print the version")
    .option(
      "-g, --gateway <URL|NAME>",
      "gateway URL (https://HOST:PORT) or configured name [env OPENSHELL_GATEWAY]",
    )
    .option("--ca-file <FILE>", "CA bundle for the gateway's certificate")
    .option("--client-cert <FILE>", "client certificate (mTLS)")
    .option("--client-key <FILE>", "client key (mTLS)")
    .option("--token-file <FILE>", "file holding a bearer token [env OPENSHELL_TOKEN holds the token itself]")
    .addOption(new Option("-w, --workspace <NAME>", "workspace").default("default"))
    .option("--no-color", "disable colours (also NO_COLOR)")
    .showSuggestionAfterError()
    .addHelpText("after", EXIT_HELP)
    .exitOverride();
  program.configureHelp({ sortSubcommands: true });

  addSandboxCommands(program, ctx);
  addGatewayCommands(program, ctx);
  addRegistryCommands(program, ctx);
  addDoctorCommand(program, ctx);

  program
    .command("version")
    .description("print the CLI version (and the gateway's, when one is reachable)")
    .option("--client", "only the client version")
    .action(async (opts: { client?: boolean }) => {
      ctx.out(`client: ${VERSION}\n`);
      if (opts.client) return;
      const { OpenShell } = await import("../gen/openshell/v1/openshell_pb.js");
      const health = await ctx.client(OpenShell).health({});
      ctx.out(`gateway: ${health.version} (${ctx.gatewayLabel()})\n`);
    });

  program
    .command("completion")
    .description("print a shell completion script")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(["bash", "zsh", "fish"]))
    .action((shell: "bash" | "zsh" | "fish") => {
      ctx.out(completionScript(program, shell));
    });

  // Commander applies exitOverride only to the command it is set on.
  const applyOverride = (command: Command) => {
    command.exitOverride();
    command.commands.forEach(applyOverride);
  };
  applyOverride(program);
  return program;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let program: Command | undefined;
  const ctx = new CliContext(() => program!.opts<GlobalOptions>(), env);
  try {
    program = buildProgram(ctx);
    await program.parseAsync([...argv], { from: "user" });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : CLI_EXIT.usage;
    if (err instanceof ConnectError) {
      const { line, exitCode } = describeRpcError(err, ctx.gatewayLabel());
      process.stderr.write(`openshell: error: ${line}\n`);
      return exitCode;
    }
    const withCode = err as { exitCode?: unknown };
    const code = typeof withCode.exitCode === "number" ? withCode.exitCode : exitCodeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`openshell: error: ${message.split("\n")[0]}\n`);
    if (env.OPENSHELL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return code;
  }
}
