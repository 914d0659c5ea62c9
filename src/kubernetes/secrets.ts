// Secrets the gateway reads and (when registry credential management is enabled) writes.
//
// Reads for preflight go through watch caches, one per secret name, each a list+watch with the field
// selector metadata.name=NAME: the API server authorizes those with RBAC resourceNames, so the gateway
// needs no right to read other secrets. The configured pull secrets are watched from startup; a
// per-sandbox name is watched from its first use on (one round trip then, none after).

import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { SecretView } from "../registry/preflight.js";
import { KubeClient, type KubeMetrics } from "./client.js";
import { Reflector, type KubeObject, type ReflectorLogger, type WatchLike } from "./reflector.js";

interface SecretResource extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export const MANAGED_SECRET_LABEL = "openshell.ai/managed-by";
const MAX_WATCHED_NAMES = 256;

export interface SecretCacheOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly watch: WatchLike;
  readonly metrics?: KubeMetrics;
  readonly logger?: ReflectorLogger;
  readonly syncTimeoutMs?: number;
}

export class PullSecretCache {
  private readonly reflectors = new Map<string, Reflector<SecretResource>>();

  constructor(private readonly options: SecretCacheOptions) {}

  static forConfig(
    kc: KubeConfig,
    namespace: string,
    client: KubeClient,
    logger?: ReflectorLogger,
  ): PullSecretCache {
    return new PullSecretCache({ client, namespace, watch: new Watch(kc), ...(logger ? { logger } : {}) });
  }

  private reflectorFor(name: string): Reflector<SecretResource> {
    let reflector = this.reflectors.get(name);
    if (reflector) {
      // Most recently used last, so the oldest is evicted first.
      this.reflectors.delete(name);
      this.reflectors.set(name, reflector);
      return reflector;
    }
    const { client, namespace } = this.options;
    const path = `/api/v1/namespaces/${namespace}/secrets`;
    reflector = new Reflector<SecretResource>({
      resource: "secrets",
      path,
      fieldSelector: `metadata.name=${name}`,
      watch: this.options.watch,
      ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
      list: (query) =>
        client.request<{
          items: SecretResource[];
          metadata?: { resourceVersion?: string; continue?: string };
        }>({
          verb: "list",
          resource: "secrets",
          path,
          query,
          namespace,
          name,
        }),
      // Only what preflight needs; nothing else of the secret is kept in memory.
      transform: (s) => ({
        metadata: {
          name: s.metadata?.name,
          namespace: s.metadata?.namespace,
          resourceVersion: s.metadata?.resourceVersion,
        },
        type: s.type,
        data: s.data,
      }),
      onChange: () => undefined,
    });
    this.reflectors.set(name, reflector);
    reflector.start();
    if (this.reflectors.size > MAX_WATCHED_NAMES) {
      const [oldest] = this.reflectors.keys();
      if (oldest !== undefined && oldest !== name) {
        void this.reflectors.get(oldest)?.stop();
        this.reflectors.delete(oldest);
      }
    }
    return reflector;
  }

  /** Starts watching names that will be needed (the configured pull secrets). */
  async prime(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((name) => this.lookup(name)));
  }

  /** The secret as the cache knows it; undefined when it does not exist. */
  async lookup(name: string): Promise<SecretView | undefined> {
    const reflector = this.reflectorFor(name);
    let secret: SecretResource | undefined;
    if (reflector.isSynced) {
      secret = reflector.list()[0];
    } else {
      // Until the watch cache has synced, one direct read answers (so an RBAC refusal is reported at
      // once, naming the secret, rather than after a sync timeout).
      const { client, namespace } = this.options;
      try {
        const list = await client.request<{ items: SecretResource[] }>({
          verb: "list",
          resource: "secrets",
          path: `/api/v1/namespaces/${namespace}/secrets`,
          query: { fieldSelector: `metadata.name=${name}` },
          namespace,
          name,
          timeoutMs: this.options.syncTimeoutMs ?? 10_000,
        });
        secret = list.items[0];
      } catch (err) {
        // A reflector that cannot list (e.g. RBAC) is dropped so the next lookup tries again.
        void reflector.stop();
        this.reflectors.delete(name);
        throw err;
      }
    }
    if (!secret) return undefined;
    return { name, namespace: this.options.namespace, type: secret.type ?? "", data: secret.data };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
    this.reflectors.clear();
  }
}

/**
 * Namespaces (other than the sandbox namespace) that hold a secret of this name, for a better error
 * message. Needs a cluster-wide list right; without it the answer is simply "none known".
 */
export async function namespacesWithSecret(
  client: KubeClient,
  name: string,
  except: string,
): Promise<string[]> {
  try {
    const list = await client.request<{ items: SecretResource[] }>({
      verb: "list",
      resource: "secrets",
      path: "/api/v1/secrets",
      query: { fieldSelector: `metadata.name=${name}`, limit: 20 },
      timeoutMs: 5000,
    });
    return list.items
      .map((s) => s.metadata?.namespace ?? "")
      .filter((ns) => ns !== "" && ns !== except)
      .sort();
  } catch {
    return [];
  }
}

/** The gateway's pull secret source: the per-name watch caches plus the cross-namespace hint. */
export function pullSecretSource(
  kc: KubeConfig,
  client: KubeClient,
  namespace: string,
  logger?: ReflectorLogger,
): {
  lookup(name: string): Promise<SecretView | undefined>;
  elsewhere(name: string): Promise<string[]>;
  cache: PullSecretCache;
} {
  const cache = PullSecretCache.forConfig(kc, namespace, client, logger);
  return {
    cache,
    lookup: (name) => cache.lookup(name),
    elsewhere: (name) => namespacesWithSecret(client, name, namespace),
  };
}
