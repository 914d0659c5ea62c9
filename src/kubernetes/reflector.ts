// Our own list/watch cache ("reflector") over client-node's Watch, for one namespaced resource.
//
// Why not client-node's informer: in 1.4.0 a watch has no client-side timeout (a half-open connection
// hangs forever) and the informer stops for good on any error other than 410. This one lists, then
// watches from the list's resourceVersion with bookmarks and a server-side timeout, aborts a watch that
// has been silent longer than the watchdog allows, relists on 410 Gone, backs off on errors, and counts
// every restart. Cache updates are pure functions (exported for tests); the clock, the delay and the
// random source are injected so tests can drive the loop without waiting.

import type { KubeMetrics } from "./client.js";

/** The fields of any Kubernetes object the reflector reads. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
    managedFields?: unknown;
  };
}

export interface ObjectList<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export type ListFn<T> = (query: Record<string, string | number | undefined>) => Promise<ObjectList<T>>;

/** The subset of client-node's Watch the reflector uses (so tests can stub it). */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

export type CacheChange<T> =
  | { readonly type: "add"; readonly obj: T }
  | { readonly type: "update"; readonly obj: T; readonly old: T }
  | { readonly type: "delete"; readonly obj: T };

export interface ReflectorLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type RestartReason = "closed" | "watchdog" | "expired" | "error";

export interface ReflectorOptions<T extends KubeObject> {
  /** For metrics and logs, e.g. "pods" or "sandboxes.v1beta1". */
  readonly resource: string;
  /** The namespaced collection path, e.g. /api/v1/namespaces/ns/pods. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly list: ListFn<T>;
  readonly watch: WatchLike;
  /** Called for every cache change, in order. Exceptions are logged and swallowed. */
  readonly onChange: (change: CacheChange<T>) => void;
  /** Objects failing the filter are never cached (e.g. events about other kinds). */
  readonly filter?: (obj: T) => boolean;
  /** Trims objects before caching (e.g. drops managedFields). */
  readonly transform?: (obj: T) => T;
  readonly metrics?: KubeMetrics;
  readonly logger?: ReflectorLogger;
  /** Server-side watch timeout; a random 0..jitter is added so many watches do not restart together. */
  readonly watchTimeoutSeconds?: number;
  readonly watchJitterSeconds?: number;
  /**
   * A watch that delivered nothing (not even a bookmark) for this long is aborted and restarted.
   * The API server sends bookmarks about once a minute to watchers that ask for them.
   */
  readonly watchdogMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Page size of the list. */
  readonly pageSize?: number;
  readonly delay?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
}

export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
export const DEFAULT_WATCH_JITTER_SECONDS = 60;
export const DEFAULT_WATCHDOG_MS = 150_000;

export function objectKey(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

/** Replaces the cache with a fresh list and returns what changed (deletes last). Mutates `cache`. */
export function replaceAll<T extends KubeObject>(
  cache: Map<string, T>,
  items: readonly T[],
): CacheChange<T>[] {
  const changes: CacheChange<T>[] = [];
  const seen = new Set<string>();
  for (const obj of items) {
    const key = objectKey(obj);
    seen.add(key);
    const old = cache.get(key);
    cache.set(key, obj);
    if (!old) changes.push({ type: "add", obj });
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
      changes.push({ type: "update", obj, old });
  }
  for (const [key, obj] of cache) {
    if (seen.has(key)) continue;
    cache.delete(key);
    changes.push({ type: "delete", obj });
  }
  return changes;
}

/** Applies one ADDED/MODIFIED/DELETED watch event. Mutates `cache`. */
export function applyWatchEvent<T extends KubeObject>(
  cache: Map<string, T>,
  type: string,
  obj: T,
): CacheChange<T> | undefined {
  const key = objectKey(obj);
  const old = cache.get(key);
  if (type === "DELETED") {
    if (!old) return undefined;
    cache.delete(key);
    return { type: "delete", obj };
  }
  if (type !== "ADDED" && type !== "MODIFIED") return undefined;
  cache.set(key, obj);
  if (!old) return { type: "add", obj };
  if (old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return undefined;
  return { type: "update", obj, old };
}

/** Backoff for the nth consecutive failure (1-based): initial·2^(n-1), capped, with ±20 % jitter. */
export function backoffDelay(
  failures: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

function statusCodeOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown; code?: unknown } | undefined;
  if (typeof e?.statusCode === "number") return e.statusCode;
  if (typeof e?.code === "number") return e.code;
  return undefined;
}

/**
 * True when the watch cannot resume from our resourceVersion and a relist is needed: 410 Gone /
 * "too old resource version" (compacted away), and "Too large resource version" (the API server's
 * storage is behind our version, e.g. after etcd was restored or replaced; client-go relists too).
 */
export function isExpired(err: unknown): boolean {
  if (statusCodeOf(err) === 410) return true;
  const status = err as { reason?: unknown; message?: unknown } | undefined;
  return (
    status?.reason === "Expired" ||
    status?.reason === "Gone" ||
    (typeof status?.message === "string" && /too (old|large) resource version/i.test(status.message))
  );
}

function defaultDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

interface WatchOutcome {
  readonly reason: RestartReason | "stopped";
  readonly error?: unknown;
  readonly events: number;
  readonly durationMs: number;
  /** The API server answered the watch request (its response headers arrived). */
  readonly established: boolean;
}

/** Consecutive failures after which the next attempt relists instead of resuming the watch. */
const RELIST_AFTER_FAILURES = 3;
/** A watch that ended this quickly without delivering anything counts as a failure for backoff. */
const MIN_HEALTHY_WATCH_MS = 1000;

export class Reflector<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private resourceVersion = "";
  private stopped = false;
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private finishWatch: ((reason: WatchOutcome["reason"], error?: unknown) => void) | undefined;
  private syncedResolve!: () => void;
  private syncedReject!: (err: unknown) => void;
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  private hasSynced = false;
  private connected = false;
  private lastSuccessMs = 0;
  private lastErrorMessage = "";
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly delay: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(private readonly options: ReflectorOptions<T>) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.delay = options.delay ?? defaultDelay;
    this.synced = new Promise((resolve, reject) => {
      this.syncedResolve = resolve;
      this.syncedReject = reject;
    });
    // Callers that never await `synced` must not see an unhandled rejection on stop().
    this.synced.catch(() => undefined);
  }

  get resource(): string {
    return this.options.resource;
  }

  /** Starts the list/watch loop; idempotent. */
  start(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.run();
  }

  /** Stops the loop and aborts the current watch; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort();
    this.finishWatch?.("stopped");
    this.syncedReject(new Error(`reflector for ${this.options.resource} stopped before its first list`));
    await this.loop;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** The resourceVersion the next watch starts from ("" forces a relist). */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  get isSynced(): boolean {
    return this.hasSynced;
  }

  /** True while a watch is established or the last list succeeded and nothing failed since. */
  get isConnected(): boolean {
    return this.connected;
  }

  get lastSuccessAtMs(): number {
    return this.lastSuccessMs;
  }

  get lastError(): string {
    return this.lastErrorMessage;
  }

  private emit(change: CacheChange<T>): void {
    try {
      this.options.onChange(change);
    } catch (err) {
      this.options.logger?.warn({ err, resource: this.options.resource }, "reflector change handler threw");
    }
  }

  private accept(obj: T): T | undefined {
    if (this.options.filter && !this.options.filter(obj)) return undefined;
    if (obj.metadata?.managedFields) {
      obj = { ...obj, metadata: { ...obj.metadata } };
      delete obj.metadata!.managedFields;
    }
    return this.options.transform ? this.options.transform(obj) : obj;
  }

  private markSuccess(): void {
    this.connected = true;
    this.lastSuccessMs = this.now();
  }

  private markFailure(error: unknown): void {
    this.connected = false;
    this.lastErrorMessage = error instanceof Error ? error.message : String(error);
  }

  private async relist(): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.options.list({
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        limit: this.options.pageSize ?? 500,
        continue: cont,
      });
      for (const item of page.items) {
        const accepted = this.accept(item);
        if (accepted) items.push(accepted);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? "";
    } while (cont && !this.stopped);
    if (this.stopped) return;
    for (const change of replaceAll(this.cache, items)) this.emit(change);
    this.resourceVersion = rv;
    this.markSuccess();
    this.options.logger?.debug(
      { resource: this.options.resource, items: items.length, resourceVersion: rv },
      "reflector listed",
    );
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.syncedResolve();
    }
  }

  private async run(): Promise<void> {
    const initial = this.options.backoffInitialMs ?? 1000;
    const max = this.options.backoffMaxMs ?? 30_000;
    let failures = 0;
    while (!this.stopped) {
      let failed: unknown;
      try {
        if (this.resourceVersion === "") {
          await this.relist();
          failures = 0;
        }
        if (this.stopped) break;
        const outcome = await this.watchOnce();
        if (outcome.reason === "stopped") break;
        // A watch that worked for a while resets the backoff even if it then failed.
        if (outcome.established && (outcome.events > 0 || outcome.durationMs >= MIN_HEALTHY_WATCH_MS))
          failures = 0;
        this.options.metrics?.watchRestarts.inc({ resource: this.options.resource, reason: outcome.reason });
        if (outcome.reason === "expired") {
          // The resourceVersion fell out of the server's watch window: relist and diff so nothing is missed.
          this.options.logger?.info({ resource: this.options.resource }, "watch expired (410), relisting");
          this.resourceVersion = "";
          continue;
        }
        if (outcome.reason === "error") failed = outcome.error ?? new Error("watch failed");
        else if (outcome.events === 0 && outcome.durationMs < MIN_HEALTHY_WATCH_MS)
          failed = new Error(`watch ${outcome.reason} immediately`);
        else if (outcome.reason === "watchdog" && !outcome.established)
          // The request itself got no answer (a silent network partition): an outage, not a quiet watch.
          failed = new Error(`no answer from the API server within ${this.watchdogMs} ms`);
        else if (outcome.reason === "watchdog") {
          // Silent for too long: not known to be connected until the next watch is answered, so that a
          // partition that froze an open watch shows in apiReachable() once the grace has passed.
          this.connected = false;
          this.options.logger?.warn(
            { resource: this.options.resource, watchdogMs: this.watchdogMs },
            "watch silent for too long, restarting",
          );
        }
      } catch (err) {
        if (isExpired(err)) {
          this.resourceVersion = "";
          this.options.metrics?.watchRestarts.inc({ resource: this.options.resource, reason: "expired" });
        }
        failed = err;
      }
      if (failed === undefined) {
        failures = 0;
        continue;
      }
      failures += 1;
      this.markFailure(failed);
      // Resuming keeps failing: the server may have lost or replaced our history; start over.
      if (failures >= RELIST_AFTER_FAILURES) this.resourceVersion = "";
      const wait = backoffDelay(failures, initial, max, this.random);
      this.options.logger?.warn(
        { resource: this.options.resource, err: this.lastErrorMessage, failures, retryInMs: wait },
        "list/watch failed, backing off",
      );
      await this.delay(wait, this.stopController.signal);
    }
  }

  private get watchdogMs(): number {
    return this.options.watchdogMs ?? DEFAULT_WATCHDOG_MS;
  }

  private watchOnce(): Promise<WatchOutcome> {
    const started = this.now();
    let events = 0;
    let established = false;
    let settled = false;
    let controller: AbortController | undefined;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    return new Promise<WatchOutcome>((resolve) => {
      const finish = (reason: WatchOutcome["reason"], error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        this.finishWatch = undefined;
        // Aborting also covers the watchdog case: client-node's done() then fires, and is ignored.
        controller?.abort();
        resolve({ reason, error, events, durationMs: this.now() - started, established });
      };
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish("watchdog"), this.watchdogMs);
      };
      this.finishWatch = finish;
      arm();
      const timeoutSeconds =
        (this.options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS) +
        Math.floor(this.random() * (this.options.watchJitterSeconds ?? DEFAULT_WATCH_JITTER_SECONDS));
      const query = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
      };
      const onEvent = (type: string, apiObj: unknown) => {
        // A stale attempt (the watchdog gave up on it) may still deliver; its events are dropped
        // because the next watch resumes from the last resourceVersion we did apply.
        if (settled) return;
        arm();
        events += 1;
        this.markSuccess();
        this.options.metrics?.watchEvents.inc({ resource: this.options.resource, type });
        const obj = apiObj as T;
        if (type === "ERROR") {
          finish(isExpired(apiObj) ? "expired" : "error", watchErrorFromStatus(apiObj));
          return;
        }
        const rv = obj?.metadata?.resourceVersion;
        if (type === "BOOKMARK") {
          if (rv) this.resourceVersion = rv;
          return;
        }
        const accepted = this.accept(obj);
        if (accepted) {
          const change = applyWatchEvent(this.cache, type, accepted);
          if (change) this.emit(change);
        } else if (type === "DELETED" || type === "MODIFIED") {
          // An object that stopped matching the filter leaves the cache.
          const change = applyWatchEvent(this.cache, "DELETED", obj);
          if (change) this.emit(change);
        }
        if (rv) this.resourceVersion = rv;
      };
      const onDone = (err: unknown) => {
        if (settled) return;
        if (err === null || err === undefined) finish("closed");
        else finish(isExpired(err) ? "expired" : "error", err);
      };
      this.options.watch.watch(this.options.path, query, onEvent, onDone).then(
        (c) => {
          controller = c;
          if (settled) c.abort();
          else {
            established = true;
            this.markSuccess();
          }
        },
        (err: unknown) => finish("error", err),
      );
    });
  }
}

function watchErrorFromStatus(status: unknown): Error {
  const s = status as { code?: unknown; message?: unknown; reason?: unknown } | undefined;
  const err = new Error(
    `watch error event: ${typeof s?.reason === "string" ? s.reason : "unknown"} ${
      typeof s?.message === "string" ? s.message : ""
    }`.trim(),
  ) as Error & { statusCode?: number };
  if (typeof s?.code === "number") err.statusCode = s.code;
  return err;
}
