// The reflector's loop driven by a stubbed Watch: no cluster, no waiting (delays are recorded).

import assert from "node:assert/strict";
import { test } from "node:test";

import { Registry } from "prom-client";

import { KubeMetrics } from "../../src/kubernetes/client.js";
import {
  applyWatchEvent,
  backoffDelay,
  isExpired,
  Reflector,
  replaceAll,
  type CacheChange,
  type KubeObject,
  type WatchLike,
} from "../../src/kubernetes/reflector.js";

function obj(name: string, rv: string, extra: Partial<KubeObject> = {}): KubeObject {
  return { kind: "Pod", metadata: { namespace: "ns", name, resourceVersion: rv }, ...extra };
}

interface WatchCall {
  path: string;
  query: Record<string, string | number | boolean | undefined>;
  callback: (phase: string, apiObj: unknown) => void;
  done: (err: unknown) => void;
  controller: AbortController;
}

/** A Watch whose calls the test answers by hand. */
class StubWatch implements WatchLike {
  readonly calls: WatchCall[] = [];
  private waiters: (() => void)[] = [];

  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const call: WatchCall = { path, query, callback, done, controller: new AbortController() };
    this.calls.push(call);
    for (const w of this.waiters.splice(0)) w();
    return Promise.resolve(call.controller);
  }

  /** Resolves with the count-th watch call once the reflector has made it. */
  next(count: number): Promise<WatchCall> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.calls.length >= count) resolve(this.calls[count - 1]!);
        else this.waiters.push(check);
      };
      check();
    });
  }
}

const tick = () => new Promise((r) => setImmediate(r));

function setup(lists: (KubeObject[] | Error)[], extra: { watchdogMs?: number } = {}) {
  const watch = new StubWatch();
  const changes: string[] = [];
  const delays: number[] = [];
  const listQueries: Record<string, unknown>[] = [];
  const registry = new Registry();
  const metrics = new KubeMetrics(registry);
  let clock = 0;
  let listRv = 100;
  const reflector = new Reflector<KubeObject>({
    resource: "pods",
    path: "/api/v1/namespaces/ns/pods",
    labelSelector: "openshell.ai/managed-by=openshell",
    list: (query) => {
      listQueries.push(query);
      const next = lists.shift() ?? [];
      if (next instanceof Error) return Promise.reject(next);
      listRv += 1;
      return Promise.resolve({ items: next, metadata: { resourceVersion: String(listRv) } });
    },
    watch,
    metrics,
    onChange: (c: CacheChange<KubeObject>) => changes.push(`${c.type}:${c.obj.metadata?.name}`),
    delay: (ms) => {
      delays.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    random: () => 0.5,
    now: () => clock,
    watchdogMs: extra.watchdogMs ?? 60_000,
  });
  const advance = (ms: number) => (clock += ms);
  return { watch, changes, delays, listQueries, reflector, registry, advance };
}

async function restarts(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric("openshell_kubernetes_watch_restarts_total")!.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.reason), v.value]));
}

test("replaceAll reports adds, updates with a new resourceVersion, and deletes of missing objects", () => {
  const cache = new Map<string, KubeObject>();
  replaceAll(cache, [obj("a", "1"), obj("b", "1")]);
  const changes = replaceAll(cache, [obj("a", "1"), obj("b", "2"), obj("c", "1")]);
  assert.deepEqual(
    changes.map((c) => `${c.type}:${c.obj.metadata?.name}`),
    ["update:b", "add:c"],
  );
  const gone = replaceAll(cache, [obj("c", "1")]);
  assert.deepEqual(
    gone.map((c) => `${c.type}:${c.obj.metadata?.name}`),
    ["delete:a", "delete:b"],
  );
});

test("applyWatchEvent ignores a delete of an unknown object and a repeat of the same resourceVersion", () => {
  const cache = new Map<string, KubeObject>();
  assert.equal(applyWatchEvent(cache, "DELETED", obj("x", "1")), undefined);
  assert.equal(applyWatchEvent(cache, "ADDED", obj("x", "1"))?.type, "add");
  assert.equal(applyWatchEvent(cache, "MODIFIED", obj("x", "1")), undefined);
  assert.equal(applyWatchEvent(cache, "MODIFIED", obj("x", "2"))?.type, "update");
  assert.equal(applyWatchEvent(cache, "DELETED", obj("x", "3"))?.type, "delete");
  assert.equal(cache.size, 0);
});

test("backoffDelay doubles from the initial delay up to the cap", () => {
  const mid = () => 0.5; // no jitter at the midpoint
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 1000, 30_000, mid)),
    [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000],
  );
});

test("isExpired recognises 410 statuses, Expired reasons and the too-old message", () => {
  assert.ok(isExpired({ code: 410 }));
  assert.ok(isExpired({ statusCode: 410 }));
  assert.ok(isExpired({ reason: "Expired" }));
  assert.ok(isExpired({ message: "too old resource version: 5 (10)" }));
  assert.ok(!isExpired({ code: 500, message: "boom" }));
});

test("lists, then watches from the list's resourceVersion with bookmarks and a jittered timeout", async () => {
  const { watch, changes, reflector } = setup([[obj("a", "5")]]);
  reflector.start();
  await reflector.synced;
  const call = await watch.next(1);
  assert.equal(call.path, "/api/v1/namespaces/ns/pods");
  assert.equal(call.query.resourceVersion, "101");
  assert.equal(call.query.allowWatchBookmarks, true);
  assert.equal(call.query.labelSelector, "openshell.ai/managed-by=openshell");
  assert.equal(call.query.timeoutSeconds, 300 + 30);
  assert.deepEqual(changes, ["add:a"]);
  await reflector.stop();
});

test("watch events update the cache and bookmarks move the resourceVersion on", async () => {
  const { watch, changes, reflector } = setup([[]]);
  reflector.start();
  const call = await watch.next(1);
  call.callback("ADDED", obj("a", "110"));
  call.callback("MODIFIED", obj("a", "111"));
  call.callback("BOOKMARK", { metadata: { resourceVersion: "120" } });
  assert.equal(reflector.lastResourceVersion, "120");
  call.callback("DELETED", obj("a", "121"));
  assert.deepEqual(changes, ["add:a", "update:a", "delete:a"]);
  // the server ends the watch at timeoutSeconds: rewatch from the last resourceVersion, no relist
  call.done(null);
  const second = await watch.next(2);
  assert.equal(second.query.resourceVersion, "121");
  await reflector.stop();
});

test("a 410 ERROR event relists and the diff reports what changed while disconnected", async () => {
  const { watch, changes, reflector, listQueries, registry } = setup([
    [obj("a", "1"), obj("b", "1")],
    [obj("b", "2"), obj("c", "1")],
  ]);
  reflector.start();
  const call = await watch.next(1);
  call.callback("ERROR", {
    kind: "Status",
    code: 410,
    reason: "Expired",
    message: "too old resource version",
  });
  const second = await watch.next(2);
  assert.equal(listQueries.length, 2);
  assert.equal(second.query.resourceVersion, "102");
  assert.deepEqual(changes, ["add:a", "add:b", "update:b", "add:c", "delete:a"]);
  assert.equal((await restarts(registry)).expired, 1);
  assert.ok(call.controller.signal.aborted, "the old watch is aborted");
  await reflector.stop();
});

test("a 410 from the watch request itself also relists", async () => {
  const { watch, reflector, listQueries } = setup([[], []]);
  reflector.start();
  const call = await watch.next(1);
  call.done(Object.assign(new Error("Gone"), { statusCode: 410 }));
  await watch.next(2);
  assert.equal(listQueries.length, 2);
  await reflector.stop();
});

test("errors back off exponentially and a success resets the backoff", async () => {
  const boom = new Error("connect ECONNREFUSED");
  const { watch, delays, reflector, advance } = setup([boom, boom, []]);
  reflector.start();
  const call = await watch.next(1);
  assert.deepEqual(delays, [1000, 2000]);
  assert.equal(reflector.isConnected, true);
  // a watch error after a healthy stretch: one backoff step, then rewatch from the same resourceVersion
  call.callback("ADDED", obj("a", "200"));
  advance(5000);
  call.done(new Error("socket hang up"));
  const second = await watch.next(2);
  assert.deepEqual(delays, [1000, 2000, 1000]);
  assert.equal(second.query.resourceVersion, "200");
  await reflector.stop();
});

test("a watch that ends at once without events counts as a failure (no hot loop)", async () => {
  const { watch, delays, reflector } = setup([[]]);
  reflector.start();
  (await watch.next(1)).done(null);
  (await watch.next(2)).done(null);
  await watch.next(3);
  assert.deepEqual(delays, [1000, 2000]);
  await reflector.stop();
});

test("the watchdog aborts a silent watch and restarts it from the last resourceVersion", async () => {
  const { watch, reflector, registry } = setup([[]], { watchdogMs: 30 });
  reflector.start();
  const call = await watch.next(1);
  call.callback("BOOKMARK", { metadata: { resourceVersion: "150" } });
  const second = await watch.next(2);
  assert.ok(call.controller.signal.aborted);
  assert.equal(second.query.resourceVersion, "150");
  assert.equal((await restarts(registry)).watchdog, 1);
  // events from the abandoned watch are ignored
  call.callback("ADDED", obj("late", "151"));
  assert.equal(reflector.get("ns/late"), undefined);
  await reflector.stop();
});

test("stop() aborts the current watch and ends the loop", async () => {
  const { watch, reflector } = setup([[]]);
  reflector.start();
  const call = await watch.next(1);
  await reflector.stop();
  assert.ok(call.controller.signal.aborted);
  await tick();
  assert.equal(watch.calls.length, 1);
});

test("a filter keeps unrelated objects out of the cache", async () => {
  const watch = new StubWatch();
  const reflector = new Reflector<KubeObject>({
    resource: "events",
    path: "/api/v1/namespaces/ns/events",
    list: () => Promise.resolve({ items: [obj("keep", "1"), obj("drop", "1", { kind: "Node" })] }),
    watch,
    filter: (o) => o.kind === "Pod",
    onChange: () => undefined,
  });
  reflector.start();
  await reflector.synced;
  assert.deepEqual(
    reflector.list().map((o) => o.metadata?.name),
    ["keep"],
  );
  await reflector.stop();
});

test("'too large resource version' (the server's storage is behind us) relists like a 410", async () => {
  const { watch, reflector, listQueries } = setup([[], []]);
  reflector.start();
  const call = await watch.next(1);
  call.callback("ERROR", {
    kind: "Status",
    code: 504,
    reason: "Timeout",
    message: "Too large resource version: 9000, current: 12",
  });
  await watch.next(2);
  assert.equal(listQueries.length, 2);
  await reflector.stop();
});

test("after three consecutive failed resumes the reflector relists instead", async () => {
  const { watch, reflector, listQueries, delays } = setup([[], []]);
  reflector.start();
  for (let i = 1; i <= 3; i++) (await watch.next(i)).done(new Error("socket hang up"));
  await watch.next(4);
  assert.deepEqual(delays, [1000, 2000, 4000]);
  assert.equal(listQueries.length, 2, "relisted before the fourth watch");
  await reflector.stop();
});
