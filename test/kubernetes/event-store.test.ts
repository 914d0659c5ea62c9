// The per-sandbox event buffer: de-duplication by uid, bounds, order, and held events.

import assert from "node:assert/strict";
import { test } from "node:test";

import { EventStore } from "../../src/kubernetes/event-store.js";
import type { EventResource } from "../../src/kubernetes/objects.js";

function ev(uid: string, reason: string, last: string, count = 1, name = "s"): EventResource {
  return {
    metadata: { uid, name: `${name}.${uid}`, namespace: "ns" },
    involvedObject: { kind: "Pod", name, namespace: "ns" },
    reason,
    message: `${reason} happened`,
    type: "Normal",
    count,
    lastTimestamp: last,
  };
}

test("a repeat of the same Event is dropped; a higher count is recorded again and moves to the end", () => {
  const store = new EventStore();
  assert.ok(store.record("id", ev("a", "Pulling", "2026-12-03T17:00:01Z")));
  assert.ok(store.record("id", ev("b", "Failed", "2026-12-03T17:00:02Z")));
  assert.equal(store.record("id", ev("a", "Pulling", "2026-12-03T17:00:01Z")), undefined);
  const again = store.record("id", ev("a", "Pulling", "2026-12-03T17:00:05Z", 2));
  assert.equal(again?.metadata.count, "2");
  assert.deepEqual(
    store.list("id").map((e) => e.reason),
    ["Failed", "Pulling"],
  );
});

test("each sandbox keeps at most perSandbox events, dropping the least recently updated", () => {
  const store = new EventStore({ perSandbox: 2, heldPerName: 1, heldNames: 1 });
  store.record("id", ev("a", "A", "2026-12-03T17:00:01Z"));
  store.record("id", ev("b", "B", "2026-12-03T17:00:02Z"));
  store.record("id", ev("c", "C", "2026-12-03T17:00:03Z"));
  assert.deepEqual(
    store.list("id").map((e) => e.reason),
    ["B", "C"],
  );
  store.forget("id");
  assert.deepEqual(store.list("id"), []);
});

test("held events are returned once per name, within the bounds", () => {
  const store = new EventStore({ perSandbox: 8, heldPerName: 2, heldNames: 1 });
  store.hold(ev("a", "A", "2026-12-03T17:00:01Z", 1, "x"));
  store.hold(ev("b", "B", "2026-12-03T17:00:02Z", 1, "x"));
  store.hold(ev("c", "C", "2026-12-03T17:00:03Z", 1, "x"));
  store.hold(ev("d", "D", "2026-12-03T17:00:04Z", 1, "y")); // evicts x (one name only)
  assert.deepEqual(store.takeHeld("x"), []);
  assert.deepEqual(
    store.takeHeld("y").map((e) => e.reason),
    ["D"],
  );
  assert.deepEqual(store.takeHeld("y"), []);
});
