// The gateway's only way to talk to the Kubernetes API (besides watches and exec, which have their own
// transports): one JSON request function with a hard timeout, error mapping and latency metrics.
//
// Why not the generated typed clients (CoreV1Api, CustomObjectsApi)? Three reasons, all seen in 1.4.0:
// their lists turn timestamps into Date objects while watch events carry strings, so the reflector's
// cache would hold two shapes of the same object; ApiException.message embeds the response body and
// headers, which must never reach a log line or an RPC caller unfiltered; and a per-call abort needs a
// middleware per request. A plain request with the KubeConfig's own TLS/auth options avoids all three
// while keeping every kubeconfig auth method (client certs, tokens, exec plugins, in-cluster token refresh).

import http from "node:http";
import https from "node:https";
import { existsSync } from "node:fs";

import { ApiException, KubeConfig } from "@kubernetes/client-node";
import { Counter, Histogram, type Registry } from "prom-client";

import { KubernetesError } from "./types.js";

/** Per-call timeout when the caller gives none; upstream uses 30 s (KUBE_API_TIMEOUT). */
export const DEFAULT_API_TIMEOUT_MS = 20_000;
/** Lists of a large namespace can be big, but a response beyond this is a bug, not data. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Server messages are shown to users; keep them to a readable size. */
const MAX_MESSAGE_CHARS = 1000;
const IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Loads the kubeconfig: the configured file; otherwise in-cluster config when running in a pod;
 * otherwise $KUBECONFIG / ~/.kube/config (client-node's default chain).
 */
export function loadKubeConfig(kubeconfigPath: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath !== "") {
    kc.loadFromFile(kubeconfigPath);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster()) {
    throw new KubernetesError(
      `kubeconfig ${kubeconfigPath || "(default)"} has no current cluster; set --kubeconfig or the current-context`,
      "Unavailable",
    );
  }
  return kc;
}

const metricsByRegistry = new WeakMap<Registry, KubeMetrics>();

/** API latency and watch restarts, registered on the registry the gateway exposes on /metrics. */
export class KubeMetrics {
  /** The metrics registered on `registry`, created once (prom-client rejects a second registration). */
  static on(registry: Registry): KubeMetrics {
    let metrics = metricsByRegistry.get(registry);
    if (!metrics) {
      metrics = new KubeMetrics(registry);
      metricsByRegistry.set(registry, metrics);
    }
    return metrics;
  }

  readonly apiLatency: Histogram<"verb" | "resource" | "code">;
  readonly watchRestarts: Counter<"resource" | "reason">;
  readonly watchEvents: Counter<"resource" | "type">;

  constructor(registry: Registry) {
    this.apiLatency = new Histogram({
      name: "openshell_kubernetes_api_request_duration_seconds",
      help: "Latency of Kubernetes API calls by verb, resource and HTTP status (timeout/error when none).",
      labelNames: ["verb", "resource", "code"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.watchRestarts = new Counter({
      name: "openshell_kubernetes_watch_restarts_total",
      help: "Watch restarts by resource and reason (timeout, closed, watchdog, expired, error).",
      labelNames: ["resource", "reason"],
      registers: [registry],
    });
    this.watchEvents = new Counter({
      name: "openshell_kubernetes_watch_events_total",
      help: "Watch events received by resource and type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).",
      labelNames: ["resource", "type"],
      registers: [registry],
    });
  }
}

export type Verb = "get" | "list" | "create" | "update" | "patch" | "delete" | "discover";

export interface KubeRequest {
  readonly verb: Verb;
  /** For messages and metrics, e.g. "sandboxes.agents.x-k8s.io" or "pods". */
  readonly resource: string;
  readonly path: string;
  readonly method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  /** Defaults to application/json; patches pass application/merge-patch+json and friends. */
  readonly contentType?: string;
  readonly namespace?: string;
  /** Object name, for messages. */
  readonly name?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The Status body the API server sends with errors (only the fields we read). */
interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
}

function describeTarget(req: Pick<KubeRequest, "resource" | "namespace" | "name">): string {
  const what = req.name ? `${req.resource} "${req.name}"` : req.resource;
  return req.namespace ? `${what} in namespace ${req.namespace}` : what;
}

/**
 * Removes values that the API server echoes back in validation messages for environment variables
 * (`env[0].value: Invalid value: "…"`): those come from the request body and may hold secrets.
 */
export function redactServerMessage(message: string): string {
  const redacted = message.replace(
    /(\.env(?:From)?\[\d+\][^:]*: Invalid value: )"(?:[^"\\]|\\.)*"/g,
    '$1"[redacted]"',
  );
  return redacted.length > MAX_MESSAGE_CHARS ? `${redacted.slice(0, MAX_MESSAGE_CHARS)}…` : redacted;
}

/**
 * Maps an HTTP status and the server's Status body to a KubernetesError. Only the server's
 * `message` is used (after redaction), never the request or response body.
 */
export function errorFromStatus(
  code: number,
  status: StatusBody | undefined,
  req: Pick<KubeRequest, "verb" | "resource" | "namespace" | "name">,
): KubernetesError {
  const serverMessage = status?.message ? redactServerMessage(status.message) : "";
  const target = describeTarget(req);
  switch (code) {
    case 409:
      return status?.reason === "AlreadyExists" || req.verb === "create"
        ? new KubernetesError(serverMessage || `${target} already exists`, "AlreadyExists", code)
        : new KubernetesError(serverMessage || `conflict on ${target}`, "Internal", code);
    case 404:
      return new KubernetesError(serverMessage || `${target} not found`, "NotFound", code);
    case 400:
    case 422:
      return new KubernetesError(
        serverMessage || `the API server rejected ${req.verb} ${target}`,
        "Invalid",
        code,
      );
    case 401:
      return new KubernetesError(
        `the Kubernetes API rejected the gateway's credentials (401) on ${req.verb} ${target}`,
        "Forbidden",
        code,
      );
    case 403:
      return new KubernetesError(
        `forbidden: the gateway may not ${req.verb} ${target}` + (serverMessage ? ` (${serverMessage})` : ""),
        "Forbidden",
        code,
      );
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return new KubernetesError(
        `the Kubernetes API is unavailable (${code}) on ${req.verb} ${target}` +
          (serverMessage ? `: ${serverMessage}` : ""),
        "Unavailable",
        code,
      );
    default:
      return new KubernetesError(
        `the Kubernetes API answered ${code} on ${req.verb} ${target}` +
          (serverMessage ? `: ${serverMessage}` : ""),
        "Internal",
        code,
      );
  }
}

function parseStatusBody(body: unknown): StatusBody | undefined {
  let value = body;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return value && typeof value === "object" ? value : undefined;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
]);

/**
 * Maps any failure of a Kubernetes call to a KubernetesError: our own HTTP errors pass through,
 * client-node's ApiException is mapped by code (its message embeds the body, so it is never used),
 * connection errors become Unavailable. Everything else is Internal with the error's class only.
 */
export function toKubernetesError(
  err: unknown,
  req: Pick<KubeRequest, "verb" | "resource" | "namespace" | "name">,
): KubernetesError {
  if (err instanceof KubernetesError) return err;
  if (err instanceof ApiException) {
    return errorFromStatus(err.code, parseStatusBody(err.body), req);
  }
  const e = err as { code?: unknown; statusCode?: unknown; name?: unknown; message?: unknown } | undefined;
  if (typeof e?.statusCode === "number") return errorFromStatus(e.statusCode, undefined, req);
  const code = typeof e?.code === "string" ? e.code : "";
  if (NETWORK_CODES.has(code) || code.startsWith("ERR_TLS") || code.startsWith("CERT_")) {
    return new KubernetesError(
      `the Kubernetes API is unreachable (${code}) on ${req.verb} ${describeTarget(req)}`,
      "Unavailable",
    );
  }
  const kind = typeof e?.name === "string" ? e.name : typeof err;
  return new KubernetesError(
    `unexpected failure (${kind}) on ${req.verb} ${describeTarget(req)}`,
    "Internal",
  );
}

export function timeoutError(ms: number, what: string): KubernetesError {
  return new KubernetesError(
    `timed out after ${Math.round(ms / 100) / 10}s waiting for the Kubernetes API (${what})`,
    "Timeout",
  );
}

/** JSON requests against the API server with a timeout on every call. */
export class KubeClient {
  readonly timeoutMs: number;

  constructor(
    readonly kc: KubeConfig,
    readonly metrics: KubeMetrics | undefined,
    options: { timeoutMs?: number } = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
  }

  /** The server URL from the kubeconfig (for messages). */
  server(): string {
    return this.kc.getCurrentCluster()?.server ?? "";
  }

  /** Sends one request; resolves with the parsed JSON body, rejects with a KubernetesError. */
  async request<T>(req: KubeRequest): Promise<T> {
    const body = await this.requestText(req);
    return (body === "" ? undefined : JSON.parse(body)) as T;
  }

  /** The response body as text (pods/log), with the same timeouts, errors and metrics as request(). */
  async requestText(req: KubeRequest): Promise<string> {
    const started = performance.now();
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    let code = "error";
    try {
      const { status, body } = await this.send(req, timeoutMs);
      code = String(status);
      if (status >= 400) throw errorFromStatus(status, parseStatusBody(body), req);
      return body;
    } catch (err) {
      if (err instanceof KubernetesError && err.kind === "Timeout") code = "timeout";
      throw toKubernetesError(err, req);
    } finally {
      this.metrics?.apiLatency.observe(
        { verb: req.verb, resource: req.resource, code },
        (performance.now() - started) / 1000,
      );
    }
  }

  private async send(req: KubeRequest, timeoutMs: number): Promise<{ status: number; body: string }> {
    const server = this.server();
    const url = new URL(server.replace(/\/$/, "") + req.path);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const options: https.RequestOptions = {};
    // Applies client certs, CA, bearer tokens and exec-plugin credentials from the kubeconfig.
    await this.kc.applyToHTTPSOptions(options);
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const headers: http.OutgoingHttpHeaders = {
      ...((options.headers ?? {}) as http.OutgoingHttpHeaders),
      Accept: "application/json",
      ...(payload ? { "Content-Type": req.contentType ?? "application/json" } : {}),
      ...(payload ? { "Content-Length": payload.length } : {}),
    };
    const transport = url.protocol === "http:" ? http : https;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        request.destroy();
        reject(
          timeout.aborted
            ? timeoutError(timeoutMs, `${req.verb} ${describeTarget(req)}`)
            : new KubernetesError(`${req.verb} ${describeTarget(req)} was cancelled`, "Unavailable"),
        );
      };
      const request = transport.request(url, { ...options, method: req.method ?? "GET", headers });
      signal.addEventListener("abort", onAbort, { once: true });
      request.on("error", (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(signal.aborted ? timeoutError(timeoutMs, `${req.verb} ${describeTarget(req)}`) : err);
      });
      request.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            request.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          signal.removeEventListener("abort", onAbort);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        });
      });
      if (signal.aborted) {
        onAbort();
        return;
      }
      request.end(payload);
    });
  }
}
