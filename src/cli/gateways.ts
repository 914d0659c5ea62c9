// Which gateway the CLI talks to, and how. Named gateways live where upstream's Python SDK looks for them
// ($XDG_CONFIG_HOME/openshell/gateways/<name>/metadata.json, mtls/, oidc_token.json, active_gateway), so a
// gateway added with `openshell gateway add` also works with `openshell.Sandbox()` in Python.

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "./errors.js";
import { describeValue, dns1123Label } from "../validation/kubernetes-names.js";

export interface GatewayTarget {
  /** Name of the configured gateway, or undefined for an ad-hoc URL. */
  readonly name: string | undefined;
  readonly url: URL;
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly token?: string | undefined;
}

interface Metadata {
  gateway_endpoint: string;
  auth_mode?: string;
}

export function configDir(env: NodeJS.ProcessEnv): string {
  const base =
    env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== "" ? env.XDG_CONFIG_HOME : join(homedir(), ".config");
  return join(base, "openshell");
}

function gatewayDir(env: NodeJS.ProcessEnv, name: string): string {
  return join(configDir(env), "gateways", name);
}

export function parseGatewayUrl(text: string, from: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `invalid gateway URL ${describeValue(text)} (${from}): use https://HOST:PORT or http://HOST:PORT`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UsageError(
      `invalid gateway URL ${describeValue(text)} (${from}): the scheme must be https:// or http://`,
    );
  }
  if (url.pathname !== "/" || url.search || url.hash) {
    throw new UsageError(
      `invalid gateway URL ${describeValue(text)} (${from}): give only the scheme, host and port`,
    );
  }
  return url;
}

export function validateGatewayName(name: string): void {
  const reason = dns1123Label(name);
  if (reason) throw new UsageError(`invalid gateway name ${describeValue(name)}: ${reason}`);
}

function readIf(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

export function loadNamedGateway(env: NodeJS.ProcessEnv, name: string): GatewayTarget {
  const dir = gatewayDir(env, name);
  const metadataText = readIf(join(dir, "metadata.json"));
  if (metadataText === undefined) {
    throw new UsageError(
      `no gateway named ${describeValue(name)}: add it with 'openshell gateway add ${name} --url https://HOST:PORT' (see 'openshell gateway list')`,
    );
  }
  let metadata: Metadata;
  try {
    metadata = JSON.parse(metadataText) as Metadata;
  } catch {
    throw new UsageError(
      `gateway ${describeValue(name)}: ${join(dir, "metadata.json")} is not valid JSON; re-add the gateway`,
    );
  }
  const url = parseGatewayUrl(metadata.gateway_endpoint, join(dir, "metadata.json"));
  const mtls = join(dir, "mtls");
  const tokenText = metadata.auth_mode === "oidc" ? readIf(join(dir, "oidc_token.json")) : undefined;
  const token = tokenText ? (JSON.parse(tokenText) as { access_token?: string }).access_token : undefined;
  return {
    name,
    url,
    ...(existsSync(join(mtls, "ca.crt")) ? { caFile: join(mtls, "ca.crt") } : {}),
    ...(existsSync(join(mtls, "tls.crt"))
      ? { certFile: join(mtls, "tls.crt"), keyFile: join(mtls, "tls.key") }
      : {}),
    ...(token ? { token } : {}),
  };
}

export function activeGatewayName(env: NodeJS.ProcessEnv): string | undefined {
  const text = readIf(join(configDir(env), "active_gateway"))?.trim();
  return text ? text : undefined;
}

export interface TargetFlags {
  gateway?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  token?: string;
  tokenFile?: string;
}

/**
 * Resolves the gateway: --gateway (a URL or a configured name), then OPENSHELL_GATEWAY (the same; the SDK
 * reads it as a name), then the active gateway. Flags for TLS material and tokens override the stored ones.
 */
export function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv): GatewayTarget {
  const chosen = flags.gateway ?? env.OPENSHELL_GATEWAY ?? activeGatewayName(env);
  const from = flags.gateway
    ? "--gateway"
    : env.OPENSHELL_GATEWAY
      ? "OPENSHELL_GATEWAY"
      : "the active gateway";
  if (!chosen) {
    throw new UsageError(
      "no gateway selected: pass --gateway https://HOST:PORT, set OPENSHELL_GATEWAY, or run 'openshell gateway add NAME --url URL'",
    );
  }
  const base: GatewayTarget = chosen.includes("://")
    ? { name: undefined, url: parseGatewayUrl(chosen, from) }
    : loadNamedGateway(env, chosen);
  const token =
    flags.token ??
    (flags.tokenFile ? readFileSync(flags.tokenFile, "utf8").trim() : undefined) ??
    env.OPENSHELL_TOKEN;
  return {
    ...base,
    ...(flags.caFile ? { caFile: flags.caFile } : {}),
    ...(flags.certFile ? { certFile: flags.certFile } : {}),
    ...(flags.keyFile ? { keyFile: flags.keyFile } : {}),
    ...(token ? { token } : {}),
  };
}

export interface AddGateway {
  name: string;
  url: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  token?: string;
}

/** Writes a named gateway in the SDK's layout (secrets 0600) and makes it active when none is. */
export function addGateway(env: NodeJS.ProcessEnv, add: AddGateway): void {
  validateGatewayName(add.name);
  const url = parseGatewayUrl(add.url, "--url");
  if ((add.certFile === undefined) !== (add.keyFile === undefined)) {
    throw new UsageError("--client-cert and --client-key go together: give both or neither");
  }
  const dir = gatewayDir(env, add.name);
  mkdirSync(join(dir, "mtls"), { recursive: true, mode: 0o700 });
  const metadata: Metadata = { gateway_endpoint: url.origin, auth_mode: add.token ? "oidc" : "none" };
  writeFileSync(join(dir, "metadata.json"), `${JSON.stringify(metadata, null, 2)}\n`);
  const copy = (from: string | undefined, to: string) => {
    if (!from) return;
    writeFileSync(join(dir, "mtls", to), readFileSync(from), { mode: 0o600 });
    chmodSync(join(dir, "mtls", to), 0o600);
  };
  copy(add.caFile, "ca.crt");
  copy(add.certFile, "tls.crt");
  copy(add.keyFile, "tls.key");
  if (add.token) {
    // The SDK sends this as a static bearer token (no expiry means it never refreshes it).
    writeFileSync(join(dir, "oidc_token.json"), `${JSON.stringify({ access_token: add.token })}\n`, {
      mode: 0o600,
    });
  }
  if (!activeGatewayName(env)) useGateway(env, add.name);
}

export function useGateway(env: NodeJS.ProcessEnv, name: string): void {
  loadNamedGateway(env, name);
  mkdirSync(configDir(env), { recursive: true, mode: 0o700 });
  writeFileSync(join(configDir(env), "active_gateway"), `${name}\n`);
}

export function listGateways(env: NodeJS.ProcessEnv): { name: string; url: string; active: boolean }[] {
  const dir = join(configDir(env), "gateways");
  if (!existsSync(dir)) return [];
  const active = activeGatewayName(env);
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, "metadata.json")))
    .sort()
    .map((name) => {
      const target = loadNamedGateway(env, name);
      return { name, url: target.url.origin, active: name === active };
    });
}
