// The pure status mapping: first a table of small hand-made objects (one rule each), then the real
// objects captured from the test bed (test/kubernetes/fixtures, see capture-fixtures.ts).

import assert from "node:assert/strict";
import { currentPullFailure } from "../../src/gateway/pull-path.js";
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";

import type { EventResource, PodResource, SandboxResource } from "../../src/kubernetes/objects.js";
import {
  deriveSandboxPhase,
  derivePodPhase,
  mapConditions,
  observePod,
  observeSandbox,
  sandboxIdOf,
  toPlatformEvent,
  waitingContainers,
} from "../../src/kubernetes/status.js";
import type { Phase } from "../../src/kubernetes/types.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");

function fixture<T>(name: string): T {
  const file = path.join(FIXTURES, `${name}.json`);
  assert.ok(existsSync(file), `fixture ${name}.json is missing (run test/kubernetes/capture-fixtures.ts)`);
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

const ID = "0f9c2f59-6a8e-4b7e-9a39-2a8d1c1e7b55";

function sandbox(
  spec: SandboxResource["spec"] = {},
  status?: SandboxResource["status"],
  meta: Partial<NonNullable<SandboxResource["metadata"]>> = {},
): SandboxResource {
  return {
    apiVersion: "agents.x-k8s.io/v1beta1",
    kind: "Sandbox",
    metadata: {
      name: "s",
      namespace: "ns",
      labels: { "openshell.ai/sandbox-id": ID },
      resourceVersion: "7",
      ...meta,
    },
    spec,
    ...(status ? { status } : {}),
  };
}

const ready = (status: string, reason = "", message = "") => ({
  conditions: [{ type: "Ready", status, reason, message, lastTransitionTime: "2026-12-03T17:00:00Z" }],
});

function pod(
  phase: string | undefined,
  extra: Partial<NonNullable<PodResource["status"]>> = {},
  meta = {},
): PodResource {
  return {
    kind: "Pod",
    metadata: {
      name: "s",
      namespace: "ns",
      labels: { "openshell.ai/sandbox-id": ID },
      resourceVersion: "9",
      ...meta,
    },
    spec: {
      containers: [{ name: "agent", image: "reg/x:1" }],
      initContainers: [{ name: "workspace-init", image: "reg/x:1" }],
    },
    status: { ...(phase ? { phase } : {}), ...extra },
  };
}

describe("deriveSandboxPhase (upstream's rules plus stop/start and terminal pods)", () => {
  const cases: [string, SandboxResource, PodResource | undefined, Phase][] = [
    ["1. no status and no pod → UNKNOWN", sandbox(), undefined, "UNKNOWN"],
    ["2. no status but a pending pod → PROVISIONING", sandbox(), pod("Pending"), "PROVISIONING"],
    [
      "3. status without Ready → PROVISIONING",
      sandbox({}, { conditions: [], replicas: 1 }),
      undefined,
      "PROVISIONING",
    ],
    ["4. Ready True → READY", sandbox({}, ready("True", "DependenciesReady")), pod("Running"), "READY"],
    [
      "5. Ready False DependenciesNotReady → PROVISIONING",
      sandbox({}, ready("False", "DependenciesNotReady")),
      pod("Pending"),
      "PROVISIONING",
    ],
    [
      "6. transient reasons compare case-insensitively",
      sandbox({}, ready("False", "reconcilererror")),
      undefined,
      "PROVISIONING",
    ],
    [
      "7. Ready False with another reason → ERROR",
      sandbox({}, ready("False", "MultiplePods")),
      undefined,
      "ERROR",
    ],
    ["8. Ready Unknown → PROVISIONING", sandbox({}, ready("Unknown")), undefined, "PROVISIONING"],
    [
      "9. deletionTimestamp wins → DELETING",
      sandbox({}, ready("True"), { deletionTimestamp: "2026-12-03T17:00:00Z" }),
      pod("Running"),
      "DELETING",
    ],
    [
      "10. Suspended with the pod still there → STOPPING",
      sandbox({ operatingMode: "Suspended" }, ready("True")),
      pod("Running"),
      "STOPPING",
    ],
    [
      "11. Suspended and no pod → STOPPED",
      sandbox({ operatingMode: "Suspended" }, ready("False", "SandboxSuspended")),
      undefined,
      "STOPPED",
    ],
    [
      "12. v1alpha1 replicas 0 and no pod → STOPPED",
      sandbox({ replicas: 0 }, ready("False", "SandboxSuspended")),
      undefined,
      "STOPPED",
    ],
    [
      "13. Running again but still reported suspended → STARTING",
      sandbox({ operatingMode: "Running" }, ready("False", "SandboxSuspended")),
      undefined,
      "STARTING",
    ],
    [
      "14. pod Succeeded → COMPLETED",
      sandbox({}, ready("False", "DependenciesNotReady")),
      pod("Succeeded"),
      "COMPLETED",
    ],
    [
      "15. Ready False PodSucceeded → COMPLETED",
      sandbox({}, ready("False", "PodSucceeded")),
      undefined,
      "COMPLETED",
    ],
    ["16. pod Failed → ERROR", sandbox({}, ready("False", "DependenciesNotReady")), pod("Failed"), "ERROR"],
    ["17. Ready False PodFailed → ERROR", sandbox({}, ready("False", "PodFailed")), undefined, "ERROR"],
    [
      "18. pull failure keeps PROVISIONING (the gateway owns the grace period)",
      sandbox({}, ready("False", "DependenciesNotReady")),
      pod("Pending", {
        containerStatuses: [
          { name: "agent", state: { waiting: { reason: "ImagePullBackOff", message: "Back-off" } } },
        ],
      }),
      "PROVISIONING",
    ],
  ];
  for (const [name, s, p, want] of cases) test(name, () => assert.equal(deriveSandboxPhase(s, p), want));
});

describe("derivePodPhase (pod mode)", () => {
  const cases: [string, PodResource, Phase][] = [
    ["no status yet → PROVISIONING", pod(undefined), "PROVISIONING"],
    ["Pending → PROVISIONING", pod("Pending"), "PROVISIONING"],
    [
      "Running, not Ready → PROVISIONING",
      pod("Running", { conditions: [{ type: "Ready", status: "False" }] }),
      "PROVISIONING",
    ],
    [
      "Running and Ready → READY",
      pod("Running", { conditions: [{ type: "Ready", status: "True" }] }),
      "READY",
    ],
    ["Succeeded → COMPLETED", pod("Succeeded"), "COMPLETED"],
    ["Failed → ERROR", pod("Failed"), "ERROR"],
    ["Unknown → UNKNOWN", pod("Unknown"), "UNKNOWN"],
    ["terminating → DELETING", pod("Running", {}, { deletionTimestamp: "2026-12-03T17:00:00Z" }), "DELETING"],
  ];
  for (const [name, p, want] of cases) test(name, () => assert.equal(derivePodPhase(p), want));
});

test("conditions without type or status are skipped; odd statuses become Unknown", () => {
  assert.deepEqual(
    mapConditions([
      {
        type: "Ready",
        status: "True",
        reason: "R",
        message: "m",
        lastTransitionTime: "2026-12-03T17:00:00Z",
      },
      { type: "", status: "True" },
      { type: "X" },
      { type: "Y", status: "Maybe" },
    ]),
    [
      {
        type: "Ready",
        status: "True",
        reason: "R",
        message: "m",
        transitionTimeMs: Date.parse("2026-12-03T17:00:00Z"),
      },
      { type: "Y", status: "Unknown", reason: "", message: "", transitionTimeMs: undefined },
    ],
  );
});

test("waiting containers include init containers, with the spec's image", () => {
  const p = pod("Pending", {
    initContainerStatuses: [
      { name: "workspace-init", image: "", state: { waiting: { reason: "ErrImagePull", message: "401" } } },
    ],
    containerStatuses: [{ name: "agent", state: { waiting: { reason: "PodInitializing" } } }],
  });
  assert.deepEqual(waitingContainers(p), [
    { container: "workspace-init", init: true, image: "reg/x:1", reason: "ErrImagePull", message: "401" },
    { container: "agent", init: false, image: "reg/x:1", reason: "PodInitializing", message: "" },
  ]);
});

test("exit code, restart count and start time come from the agent container", () => {
  const p = pod("Failed", {
    containerStatuses: [
      {
        name: "agent",
        restartCount: 2,
        state: { terminated: { exitCode: 3, reason: "Error", startedAt: "2026-12-03T17:00:01Z" } },
      },
    ],
  });
  const o = observePod(p);
  assert.equal(o.phase, "ERROR");
  assert.equal(o.exitCode, 3);
  assert.equal(o.restartCount, 2);
  assert.equal(o.startedAtMs, Date.parse("2026-12-03T17:00:01Z"));
});

test("the sandbox id falls back to upstream's sandbox-<id> name prefix", () => {
  assert.equal(sandboxIdOf({ metadata: { name: "sandbox-abc" } }), "abc");
  assert.equal(sandboxIdOf({ metadata: { name: "other" } }), "");
});

describe("toPlatformEvent", () => {
  const base: EventResource = {
    metadata: { name: "e", namespace: "ns", creationTimestamp: "2026-12-03T17:00:00Z" },
    involvedObject: { kind: "Pod", name: "s", namespace: "ns" },
    type: "Normal",
    count: 1,
  };
  test("Pulled with duration and size", () => {
    const e = toPlatformEvent({
      ...base,
      reason: "Pulled",
      lastTimestamp: "2026-12-03T17:00:05Z",
      message:
        'Successfully pulled image "127.0.0.1:5443/t/s:1" in 1.2s (1.2s including waiting). Image size: 1234 bytes.',
    });
    assert.equal(e.timeMs, Date.parse("2026-12-03T17:00:05Z"));
    assert.deepEqual(e.metadata, {
      involved_kind: "Pod",
      involved_name: "s",
      namespace: "ns",
      count: "1",
      image: "127.0.0.1:5443/t/s:1",
      size: "1234",
      pull_duration: "1.2s",
    });
  });
  test("Pulling names the image; an event series uses its count and last observation", () => {
    const e = toPlatformEvent({
      ...base,
      reason: "Pulling",
      message: 'Pulling image "reg/x:1"',
      lastTimestamp: null,
      eventTime: "2026-12-03T17:00:01.000000Z",
      series: { count: 4, lastObservedTime: "2026-12-03T17:00:09.000000Z" },
    });
    assert.equal(e.metadata.image, "reg/x:1");
    assert.equal(e.metadata.count, "4");
    assert.equal(e.timeMs, Date.parse("2026-12-03T17:00:09Z"));
  });
  test("events without any timestamp fall back to creation time", () => {
    assert.equal(
      toPlatformEvent({ ...base, reason: "Scheduled", message: "x" }).timeMs,
      Date.parse("2026-12-03T17:00:00Z"),
    );
  });
});

// ---------------------------------------------------------------- captured from the test bed

// The "api" set was captured without waiting for containers to run (capture-fixtures.ts api); the node
// was joining at the time, so its pods are scheduled and ContainerCreating rather than unscheduled.
describe("captured objects (early states)", () => {
  test("pod mode: a Pending pod → PROVISIONING, waiting containers listed only once they report", () => {
    const o = observePod(fixture("api/pod-pending"));
    assert.equal(o.phase, "PROVISIONING");
    assert.equal(
      currentPullFailure(
        observeSandbox(fixture("api/v1beta1-pending"), fixture("api/v1beta1-pending.pod")),
        [],
      ),
      undefined,
    );
    assert.deepEqual(o.waiting, []);
  });

  for (const v of ["v1beta1", "v1alpha1"]) {
    test(`${v}: just created (no status yet) → UNKNOWN, with the id from the label`, () => {
      const s = fixture<SandboxResource>(`api/${v}-created`);
      const o = observeSandbox(s, undefined);
      assert.equal(o.phase, "UNKNOWN");
      assert.match(o.sandboxId, /^f1000000-/);
      assert.equal(o.objectName, s.metadata?.name);
    });
    test(`${v}: pod Pending (ContainerCreating) → PROVISIONING with Ready=False DependenciesNotReady`, () => {
      const s = fixture<SandboxResource>(`api/${v}-pending`);
      const p = fixture<PodResource>(`api/${v}-pending.pod`);
      const o = observeSandbox(s, p);
      assert.equal(o.phase, "PROVISIONING");
      assert.equal(o.podName, p.metadata?.name);
      const r = o.conditions.find((c) => c.type === "Ready");
      assert.equal(r?.status, "False");
      assert.equal(r?.reason, "DependenciesNotReady");
    });
    test(`${v}: stop requested, pod terminating → STOPPING`, () => {
      const o = observeSandbox(fixture(`api/${v}-stopping`), fixture(`api/${v}-stopping.pod`));
      assert.equal(o.phase, "STOPPING");
    });
    test(`${v}: stopped (pod gone, Suspended=True) → STOPPED`, () => {
      const s = fixture<SandboxResource>(`api/${v}-stopped`);
      const o = observeSandbox(s, undefined);
      assert.equal(o.phase, "STOPPED");
      assert.equal(o.conditions.find((c) => c.type === "Suspended")?.status, "True");
    });
    test(`${v}: resumed, controller not caught up → STARTING`, () => {
      assert.equal(observeSandbox(fixture(`api/${v}-starting`), undefined).phase, "STARTING");
    });
    test(`${v}: foreground delete in progress → DELETING`, () => {
      const o = observeSandbox(fixture(`api/${v}-deleting`), undefined);
      assert.equal(o.phase, "DELETING");
      assert.equal(o.deleting, true);
    });
  }
});

describe("captured objects (tier full)", () => {
  for (const v of ["v1beta1", "v1alpha1"]) {
    test(`${v}: running and Ready → READY with the agent's start time`, () => {
      const p = fixture<PodResource>(`full/${v}-ready.pod`);
      const o = observeSandbox(fixture(`full/${v}-ready`), p);
      assert.equal(o.phase, "READY");
      assert.equal(o.podName, p.metadata?.name);
      assert.deepEqual(o.waiting, []);
      assert.equal(o.restartCount, 0);
      assert.equal(o.exitCode, undefined);
      assert.equal(o.startedAtMs, Date.parse(p.status!.containerStatuses![0]!.state!.running!.startedAt!));
      assert.equal(o.conditions.find((c) => c.type === "Ready")?.reason, "DependenciesReady");
    });
    test(`${v}: stop with the container still stopping → STOPPING, then STOPPED`, () => {
      assert.equal(
        observeSandbox(fixture(`full/${v}-stopping`), fixture(`full/${v}-stopping.pod`)).phase,
        "STOPPING",
      );
      assert.equal(observeSandbox(fixture(`full/${v}-stopped`), undefined).phase, "STOPPED");
    });
  }

  // The kubelet's own messages, captured on the test bed, through the gateway's classification.
  const pulls: [string, string, RegExp, string][] = [
    ["bad-creds", "ErrImagePull", /401 Unauthorized/, "ImagePullAuthFailed"],
    [
      "bad-creds",
      "ImagePullBackOff",
      /^Back-off pulling image ".*": ErrImagePull: .*401 Unauthorized/,
      "ImagePullAuthFailed",
    ],
    ["bad-tag", "ErrImagePull", /code = NotFound .*no-such-tag: not found/, "ImageNotFound"],
    [
      "bad-tag",
      "ImagePullBackOff",
      /^Back-off pulling image ".*no-such-tag": ErrImagePull: /,
      "ImageNotFound",
    ],
  ];
  for (const [name, reason, message, classified] of pulls) {
    test(`pull failure (${name}, ${reason}) stays PROVISIONING and carries the kubelet's reason and message`, () => {
      const p = fixture<PodResource>(`full/pull-${name}-${reason}.pod`);
      const o = observeSandbox(fixture(`full/pull-${name}-${reason}`), p);
      assert.equal(o.phase, "PROVISIONING");
      assert.equal(o.waiting.length, 1);
      const w = o.waiting[0]!;
      assert.equal(w.container, "agent");
      assert.equal(w.init, false);
      assert.equal(w.reason, reason);
      assert.match(w.message, message);
      assert.equal(w.image, p.spec?.containers?.[0]?.image);
      assert.equal(currentPullFailure(o, [])?.reason, classified);
    });
  }

  test("pod mode: a Ready pod → READY; exit 0 → COMPLETED; exit 3 → ERROR with the exit code", () => {
    assert.equal(observePod(fixture("full/pod-running")).phase, "READY");
    const ok = observePod(fixture("full/pod-done-ok"));
    assert.equal(ok.phase, "COMPLETED");
    assert.equal(ok.exitCode, 0);
    const fail = observePod(fixture("full/pod-done-fail"));
    assert.equal(fail.phase, "ERROR");
    assert.equal(fail.exitCode, 3);
  });

  test("real kubelet events: pulls carry the image, the size and the duration; cached images say so", () => {
    const events = fixture<EventResource[]>("full/events").map(toPlatformEvent);
    const pulled = events.find((e) => e.reason === "Pulled" && e.message.startsWith("Successfully pulled"));
    assert.ok(pulled, "a Successfully pulled event was captured");
    assert.equal(pulled.metadata.image, "127.0.0.1:5443/openshell-test/sandbox:sandbox-test");
    assert.match(pulled.metadata.size ?? "", /^\d+$/);
    assert.match(pulled.metadata.pull_duration ?? "", /^[0-9.]+m?s$/);
    const cached = events.find((e) => e.reason === "Pulled" && e.metadata.already_present === "true");
    assert.ok(cached);
    assert.equal(cached.metadata.image, "127.0.0.1:5443/openshell-test/sandbox:sandbox-test");
    assert.equal(cached.metadata.size, undefined);
    const pulling = events.find((e) => e.reason === "Pulling");
    assert.equal(pulling?.metadata.image, "127.0.0.1:5443/openshell-test/sandbox:sandbox-test");
    const failed = events.find((e) => e.reason === "Failed" && e.message.startsWith("Failed to pull image"));
    assert.equal(failed?.type, "Warning");
    assert.match(failed?.metadata.image ?? "", /^127\.0\.0\.1:5443\/openshell-test\/sandbox:/);
    const backOff = events.find((e) => e.reason === "BackOff");
    assert.match(backOff?.metadata.count ?? "", /^[1-9]\d*$/);
    for (const e of events) {
      assert.equal(e.metadata.involved_kind, "Pod");
      assert.ok(e.timeMs > 0, `${e.reason} has a time`);
    }
  });
});

test("real events from the api capture: the scheduler's eventTime-only events get a time", () => {
  const scheduled = fixture<EventResource[]>("api/events")
    .filter((e) => e.reason === "Scheduled")
    .map(toPlatformEvent);
  assert.ok(scheduled.length > 0);
  for (const e of scheduled) assert.ok(e.timeMs > Date.parse("2026-01-01T00:00:00Z"));
  const missing = fixture<EventResource[]>("api/events")
    .map(toPlatformEvent)
    .find((e) => e.reason === "FailedToRetrieveImagePullSecret");
  assert.match(missing?.message ?? "", /Unable to retrieve some image pull secrets \(openshell-registry\)/);
});
