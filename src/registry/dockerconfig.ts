// Image pull secrets: building the `kubernetes.io/dockerconfigjson` payload `docker login` and
// `kubectl create secret docker-registry` write, parsing both secret types the kubelet reads, and
// matching their keys against an image the way the kubelet's keyring does. Pure functions.

import { DOCKER_HUB, parseImageReference } from "./image-reference.js";

export const DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson";
export const DOCKERCFG = "kubernetes.io/dockercfg";
export const DOCKERCONFIGJSON_KEY = ".dockerconfigjson";
export const DOCKERCFG_KEY = ".dockercfg";
/** Docker Hub's key as `docker login` writes it. */
export const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

export interface RegistryCredential {
  /** The key as written in the secret (e.g. `https://index.docker.io/v1/`, `registry.example.com:5000`). */
  readonly key: string;
  readonly username: string;
  readonly password: string;
}

export class DockerConfigError extends Error {}

/** The `auths` key for a registry server: Docker Hub's canonical key, else the bare host[:port][/path]. */
export function serverKey(server: string): string {
  const bare = server
    .replace(/^https?:\/\//, "")
    .replace(/\/+$/, "")
    .replace(/\/v[12]$/, "");
  return DOCKER_HUB_HOSTS.has(bare) ? DOCKER_HUB_KEY : bare;
}

/** Builds a .dockerconfigjson payload with username, password and auth (base64 "user:password"). */
export function buildDockerConfigJson(server: string, username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`, "utf8").toString("base64");
  return JSON.stringify({ auths: { [serverKey(server)]: { username, password, auth } } });
}

function credentialFrom(key: string, entry: unknown): RegistryCredential | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  let username = typeof e.username === "string" ? e.username : "";
  let password = typeof e.password === "string" ? e.password : "";
  if ((!username || !password) && typeof e.auth === "string" && e.auth !== "") {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  return username || password ? { key, username, password } : undefined;
}

/**
 * Parses a pull secret's data (values base64-encoded, as in the Secret object). Throws DockerConfigError
 * with a message that never contains the payload.
 */
export function parsePullSecret(
  type: string,
  data: Readonly<Record<string, string>> | undefined,
): RegistryCredential[] {
  const dataKey =
    type === DOCKERCONFIGJSON ? DOCKERCONFIGJSON_KEY : type === DOCKERCFG ? DOCKERCFG_KEY : undefined;
  if (!dataKey) throw new DockerConfigError(`has type ${type}, which the kubelet ignores for image pulls`);
  const raw = data?.[dataKey];
  if (raw === undefined) throw new DockerConfigError(`has no ${dataKey} key`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
  } catch {
    throw new DockerConfigError(`${dataKey} is not valid JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new DockerConfigError(`${dataKey} must be a JSON object`);
  }
  let entries: Record<string, unknown>;
  if (type === DOCKERCONFIGJSON) {
    const auths = (parsed as Record<string, unknown>).auths;
    if (typeof auths !== "object" || auths === null) {
      throw new DockerConfigError(
        `${dataKey} has no "auths" object (a legacy .dockercfg body under the wrong type?)`,
      );
    }
    entries = auths as Record<string, unknown>;
  } else {
    entries = parsed as Record<string, unknown>;
  }
  return Object.entries(entries)
    .map(([key, entry]) => credentialFrom(key, entry))
    .filter((c): c is RegistryCredential => c !== undefined);
}

interface ParsedKey {
  readonly hostParts: string[];
  readonly port: string;
  readonly path: string;
}

function parseKey(key: string): ParsedKey | undefined {
  let text = key.trim();
  if (!/^https?:\/\//.test(text)) text = `https://${text}`;
  let url: URL;
  try {
    url = new URL(text.replace("://*.", "://wildcard-placeholder."));
  } catch {
    return undefined;
  }
  let path = url.pathname.replace(/\/+$/, "");
  if (path.endsWith("/v1") || path.endsWith("/v2")) path = path.slice(0, -3);
  let host = url.hostname.replace(/^wildcard-placeholder\./, "*.");
  if (DOCKER_HUB_HOSTS.has(host)) host = DOCKER_HUB;
  return { hostParts: host.split("."), port: url.port, path };
}

function globMatch(pattern: string, value: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join("[^.]*")}$`,
  );
  return regex.test(value);
}

/**
 * True when a secret key covers an image, as the kubelet's keyring decides: scheme and /v1/ or /v2/
 * ignored, Docker Hub spellings equivalent, each host label glob-matched (`*.example.com`), the port
 * equal, and the key's path (if any) a prefix of the repository.
 */
export function keyMatchesImage(key: string, image: string): boolean {
  const k = parseKey(key);
  if (!k) return false;
  const ref = parseImageReference(image);
  const target = parseKey(`${ref.registry}/${ref.repository}`);
  if (!target) return false;
  if (k.hostParts.length !== target.hostParts.length) return false;
  if (!k.hostParts.every((part, i) => globMatch(part, target.hostParts[i]!))) return false;
  if (k.port !== target.port) return false;
  return k.path === "" || target.path === k.path || target.path.startsWith(`${k.path}/`);
}

/** The registry host[:port] of an image, as credentials are matched (Docker Hub normalised). */
export function registryHost(image: string): string {
  return parseImageReference(image).registry;
}
