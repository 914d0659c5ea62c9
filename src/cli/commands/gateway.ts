// `openshell gateway add|use|list`: named gateways, stored where upstream's Python SDK also finds them.

import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { addGateway, listGateways, useGateway } from "../gateways.js";
import type { CliContext } from "../context.js";
import type { OutputFormat } from "../output.js";

export function addGatewayCommands(program: Command, ctx: CliContext): void {
  const gateway = program
    .command("gateway")
    .description("configure which gateway the CLI (and the Python SDK) uses");
  gateway
    .command("add")
    .description("add a named gateway; the first one becomes active")
    .argument("<name>", "a short name (DNS-1123 label)")
    .requiredOption("--url <URL>", "https://HOST:PORT (or http:// for a plaintext development gateway)")
    .addHelpText(
      "after",
      "\nThe global --ca-file, --client-cert, --client-key and --token-file are copied into the gateway's\nconfiguration (files 0600), where the CLI and the Python SDK read them.",
    )
    .action((name: string, opts: { url: string }) => {
      const globals = ctx.globals();
      addGateway(ctx.env, {
        name,
        url: opts.url,
        ...(globals.caFile ? { caFile: globals.caFile } : {}),
        ...(globals.clientCert ? { certFile: globals.clientCert } : {}),
        ...(globals.clientKey ? { keyFile: globals.clientKey } : {}),
        ...(globals.tokenFile ? { token: readToken(globals.tokenFile) } : {}),
      });
      ctx.out(`gateway/${name} added\n`);
    });
  gateway
    .command("use")
    .description("make a configured gateway the active one")
    .argument("<name>")
    .action((name: string) => {
      useGateway(ctx.env, name);
      ctx.out(`now using gateway/${name}\n`);
    });
  gateway
    .command("list")
    .description("list configured gateways")
    .addOption(
      new Option("-o, --output <FORMAT>", "table, json or yaml")
        .choices(["table", "json", "yaml"])
        .default("table"),
    )
    .action((opts: { output: OutputFormat }) => {
      const rows = listGateways(ctx.env);
      ctx.print(
        opts.output,
        rows,
        [
          { header: "CURRENT", value: (r) => (r.active ? "*" : "") },
          { header: "NAME", value: (r) => r.name },
          { header: "URL", value: (r) => r.url },
        ],
        { gateways: rows },
      );
    });
}

function readToken(path: string): string {
  return readFileSync(path, "utf8").trim();
}
