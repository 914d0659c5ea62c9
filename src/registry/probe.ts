// The optional live registry probe: with the matched credentials, run the registry's auth flow (Basic, or
// Bearer through the WWW-Authenticate realm) and HEAD the manifest, so that wrong credentials, a missing
// tag, an unreachable registry or an untrusted certificate are reported before a pod exists.
// Credentials are only ever sent to the image's registry host, or to a token realm on that host or on
// an explicitly allowed host.

import { request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { parseImageReference, DOCKER_HUB } from "./image-reference.js";
import type { PullFailureReason } from "./classify.js";

/** Every manifest type a runtime may pull; registry 2.8 answers 404 for OCI manifests without them. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
].join(", ");

export interface ProbeOptions {
  readonly image: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM CA bundle trusted in addition to the system roots. */
  readonly ca?: string | Buffer;
  /** Hosts (other than the registry's own) that may receive credentials as a token realm. */
  readonly realmAllowList?: readonly string[];
  readonly timeoutMs?: number;
  /** Use http:// (a registry without TLS). */
  readonly insecureHttp?: boolean;
}

export type ProbeResult =
  | { readonly ok: true; readonly digest: string | undefined }
  | { readonly ok: false; readonly reason: PullFailureReason; readonly message: string };

interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

class ProbeError extends Error {
  constructor(
    readonly reason: PullFailureReason,
    message: string,
  ) {
    super(message);
  }
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  options: ProbeOptions,
): Promise<Response> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const tls = url.protocol === "https:";
  const requestOptions: RequestOptions = {
    method,
    headers,
    timeout: timeoutMs,
    ...(tls && options.ca ? { ca: options.ca } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(url, requestOptions, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () =>
      req.destroy(new ProbeError("RegistryUnreachable", `no answer from ${url.host} within ${timeoutMs} ms`)),
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err instanceof ProbeError) return reject(err);
      const code = err.code ?? "";
      if (
        /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|EPROTO/.test(code) ||
        /certificate|SSL/i.test(err.message)
      ) {
        reject(new ProbeError("RegistryTLSError", `TLS with ${url.host} failed: ${err.message}`));
      } else {
        reject(
          new ProbeError("RegistryUnreachable", `cannot connect to ${url.host}: ${code || err.message}`),
        );
      }
    });
    req.end();
  });
}

/** Parses `Bearer realm="…",service="…",scope="…"` (or Basic realm="…"). */
export function parseChallenge(
  header: string | undefined,
): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const m of match[2]!.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g))
    params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? "";
  return { scheme: match[1]!.toLowerCase(), params };
}

function registryBase(registry: string, insecure: boolean): URL {
  const host = registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
  return new URL(`${insecure ? "http" : "https"}://${host}`);
}

function basic(options: ProbeOptions): string | undefined {
  if (!options.username && !options.password) return undefined;
  return `Basic ${Buffer.from(`${options.username ?? ""}:${options.password ?? ""}`).toString("base64")}`;
}

async function bearerToken(
  challenge: Record<string, string>,
  registry: URL,
  repository: string,
  options: ProbeOptions,
): Promise<string> {
  const realm = challenge.realm;
  if (!realm)
    throw new ProbeError("ImagePullFailed", `${registry.host} asked for a bearer token without a realm`);
  let realmUrl: URL;
  try {
    realmUrl = new URL(realm);
  } catch {
    throw new ProbeError("ImagePullFailed", `${registry.host} named an invalid token realm`);
  }
  const sameHost = realmUrl.hostname === registry.hostname;
  const allowed = sameHost || (options.realmAllowList ?? []).includes(realmUrl.hostname);
  if (!allowed) {
    throw new ProbeError(
      "ImagePullFailed",
      `${registry.host} sends clients to token realm ${realmUrl.host}; credentials are not sent there unless the host is on the registry probe's realm allow-list`,
    );
  }
  if (challenge.service) realmUrl.searchParams.set("service", challenge.service);
  realmUrl.searchParams.set("scope", challenge.scope ?? `repository:${repository}:pull`);
  const auth = basic(options);
  const res = await send(realmUrl, "GET", auth ? { authorization: auth } : {}, options);
  if (res.status === 401 || res.status === 403) {
    throw new ProbeError(
      "ImagePullAuthFailed",
      `the token service at ${realmUrl.host} rejected the credentials (HTTP ${res.status})`,
    );
  }
  if (res.status !== 200)
    throw new ProbeError(
      "ImagePullFailed",
      `the token service at ${realmUrl.host} answered HTTP ${res.status}`,
    );
  let token: unknown;
  try {
    const body = JSON.parse(res.body) as { token?: unknown; access_token?: unknown };
    token = body.token ?? body.access_token;
  } catch {
    token = undefined;
  }
  if (typeof token !== "string" || !token)
    throw new ProbeError("ImagePullFailed", `the token service at ${realmUrl.host} returned no token`);
  return `Bearer ${token}`;
}

/** Probes one image. Never throws; never puts credentials into a message. */
export async function probeImage(options: ProbeOptions): Promise<ProbeResult> {
  try {
    const ref = parseImageReference(options.image);
    const base = registryBase(ref.registry, options.insecureHttp ?? false);
    const reference = ref.digest ?? ref.tag ?? "latest";
    const manifest = new URL(`/v2/${ref.repository}/manifests/${reference}`, base);
    const headers: Record<string, string> = { accept: MANIFEST_ACCEPT };

    let res = await send(manifest, "HEAD", headers, options);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers["www-authenticate"]);
      const authorization =
        challenge?.scheme === "bearer"
          ? await bearerToken(challenge.params, base, ref.repository, options)
          : basic(options);
      if (!authorization) {
        return {
          ok: false,
          reason: "ImagePullAuthFailed",
          message: `${base.host} requires credentials and no pull secret has any for it`,
        };
      }
      res = await send(manifest, "HEAD", { ...headers, authorization }, options);
    }
    if (res.status === 200) {
      const digest = res.headers["docker-content-digest"];
      return { ok: true, digest: typeof digest === "string" ? digest : undefined };
    }
    if (res.status === 401 || res.status === 403) {
      return {
        ok: false,
        reason: "ImagePullAuthFailed",
        message: `${base.host} rejected the credentials for ${ref.repository} (HTTP ${res.status})`,
      };
    }
    if (res.status === 404) {
      return {
        ok: false,
        reason: "ImageNotFound",
        message: `${base.host} has no manifest ${ref.repository}:${reference} (HTTP 404)`,
      };
    }
    if (res.status === 429)
      return { ok: false, reason: "RateLimited", message: `${base.host} is rate-limiting (HTTP 429)` };
    return {
      ok: false,
      reason: "ImagePullFailed",
      message: `${base.host} answered HTTP ${res.status} for ${ref.repository}:${reference}`,
    };
  } catch (err) {
    if (err instanceof ProbeError) return { ok: false, reason: err.reason, message: err.message };
    return {
      ok: false,
      reason: "ImagePullFailed",
      message: err instanceof Error ? err.message : String(err),
    };
  }
}
