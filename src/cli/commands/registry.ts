// `openshell registry secret create|update|list|delete`: registry credentials for sandbox pulls.
// The password comes from stdin or an environment variable; on the command line only when asked for
// explicitly with --password (with a warning). It is never echoed.

import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Option, type Command } from "commander";
import { RegistryService, type RegistrySecret } from "../../gen/openshell/ext/v1/ext_pb.js";
import type { CliContext } from "../context.js";
import { UsageError } from "../errors.js";
import { age, type Column, type OutputFormat } from "../output.js";

interface CredentialOptions {
  server: string;
  username: string;
  passwordStdin?: boolean;
  passwordEnv?: string;
  password?: string;
  namespace?: string;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin)
    parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(parts).toString("utf8");
}

/** Where the password comes from: exactly one of stdin, an env var, or (explicitly) the command line. */
export async function passwordFrom(
  opts: CredentialOptions,
  env: NodeJS.ProcessEnv,
  warn: (line: string) => void,
): Promise<string> {
  const sources = [opts.passwordStdin, opts.passwordEnv !== undefined, opts.password !== undefined].filter(
    Boolean,
  ).length;
  if (sources !== 1) {
    throw new UsageError(
      "give the password with exactly one of --password-stdin, --password-env VAR or --password VALUE",
    );
  }
  if (opts.passwordStdin) {
    if (process.stdin.isTTY)
      throw new UsageError(
        "--password-stdin reads a pipe, e.g. 'cat token | openshell registry secret create …'",
      );
    return (await readStdin()).replace(/\r?\n$/, "");
  }
  if (opts.passwordEnv !== undefined) {
    const value = env[opts.passwordEnv];
    if (value === undefined || value === "")
      throw new UsageError(`environment variable ${opts.passwordEnv} (--password-env) is not set`);
    return value;
  }
  warn(
    "openshell: warning: a password on the command line ends up in shell history and process listings; prefer --password-stdin\n",
  );
  return opts.password!;
}

const COLUMNS: Column<RegistrySecret>[] = [
  { header: "NAME", value: (s) => s.name },
  { header: "SERVERS", value: (s) => s.servers.join(",") },
  { header: "USERNAME", value: (s) => s.username },
  { header: "AGE", value: (s) => age(s.createdTime ? timestampMs(s.createdTime) : undefined) },
];

function secretJson(s: RegistrySecret): unknown {
  return {
    name: s.name,
    namespace: s.namespace,
    servers: s.servers,
    username: s.username,
    ...(s.createdTime ? { createdTime: new Date(timestampMs(s.createdTime)).toISOString() } : {}),
  };
}

export function addRegistryCommands(program: Command, ctx: CliContext): void {
  const secret = program
    .command("registry")
    .description("manage private registry credentials")
    .command("secret")
    .description("image pull secrets (kubernetes.io/dockerconfigjson) in the sandbox namespace");
  const namespace = () =>
    new Option("-n, --namespace <NAMESPACE>", "namespace (default: the gateway's sandbox namespace)");
  const output = () =>
    new Option("-o, --output <FORMAT>", "table, json or yaml")
      .choices(["table", "json", "yaml"])
      .default("table");

  for (const verb of ["create", "update"] as const) {
    secret
      .command(verb)
      .description(
        verb === "create" ? "create registry credentials" : "replace the credentials of a secret (rotation)",
      )
      .argument("<name>", "secret name")
      .requiredOption("--server <HOST>", "registry host[:port], e.g. registry.example.com or docker.io")
      .requiredOption("--username <USER>", "registry user")
      .option("--password-stdin", "read the password from standard input")
      .option("--password-env <VAR>", "read the password from this environment variable")
      .option("--password <VALUE>", "the password itself (discouraged: visible in history and ps)")
      .addOption(namespace())
      .addOption(output())
      .action(async (name: string, opts: CredentialOptions & { output: OutputFormat }) => {
        const password = await passwordFrom(opts, ctx.env, (line) => ctx.err(line));
        const api = ctx.client(RegistryService);
        const request = {
          name,
          namespace: opts.namespace ?? "",
          server: opts.server,
          username: opts.username,
          password,
        };
        const res =
          verb === "create"
            ? await api.createRegistrySecret(request)
            : await api.updateRegistrySecret(request);
        if (opts.output === "table")
          ctx.out(`secret/${res.secret!.name} ${verb === "create" ? "created" : "updated"}\n`);
        else ctx.print(opts.output, [res.secret!], COLUMNS, secretJson(res.secret!));
      });
  }

  secret
    .command("list")
    .alias("ls")
    .description("list registry credentials managed by openshell (never their passwords)")
    .addOption(namespace())
    .addOption(output())
    .action(async (opts: { namespace?: string; output: OutputFormat }) => {
      const res = await ctx.client(RegistryService).listRegistrySecrets({ namespace: opts.namespace ?? "" });
      ctx.print(opts.output, res.secrets, COLUMNS, { secrets: res.secrets.map(secretJson) });
    });

  secret
    .command("delete")
    .alias("rm")
    .description("delete registry credentials managed by openshell")
    .argument("<name>")
    .addOption(namespace())
    .option("--ignore-not-found", "succeed when the secret does not exist")
    .action(async (name: string, opts: { namespace?: string; ignoreNotFound?: boolean }) => {
      const res = await ctx
        .client(RegistryService)
        .deleteRegistrySecret({ name, namespace: opts.namespace ?? "" });
      if (!res.deleted && !opts.ignoreNotFound) throw new Error(`not found: secret "${name}" does not exist`);
      ctx.out(res.deleted ? `secret/${name} deleted\n` : `secret/${name} not found (ignored)\n`);
    });
}
