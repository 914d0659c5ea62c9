import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  LIMITS,
  formatFieldError,
  kubernetesName,
  validateSandboxRequest,
  type SandboxRequest,
} from "../../src/render/request.js";

const ID = "0f9c2f59-6a8e-4b7e-9a39-2a8d1c1e7b55";
const base: SandboxRequest = { id: ID, name: "demo" };

function errorsFor(overrides: Partial<SandboxRequest>): string[] {
  return validateSandboxRequest({ ...base, ...overrides }).map(formatFieldError);
}

function onlyError(overrides: Partial<SandboxRequest>): string {
  const errors = errorsFor(overrides);
  assert.equal(errors.length, 1, `exactly one error: ${JSON.stringify(errors)}`);
  return errors[0]!;
}

test("a minimal request is valid", () => {
  assert.deepEqual(errorsFor({}), []);
});

describe("names", () => {
  test("must be DNS-1035 labels (agent-sandbox names a Service after the Sandbox)", () => {
    assert.match(onlyError({ name: "1demo" }), /^invalid name: "1demo" must be a DNS-1035 label/);
    assert.match(onlyError({ name: "Demo" }), /DNS-1035/);
    assert.match(onlyError({ name: "" }), /must not be empty/);
    assert.deepEqual(errorsFor({ name: "a".repeat(63) }), []);
    assert.match(onlyError({ name: "a".repeat(64) }), /at most 63 characters \(got 64\)/);
  });

  test("workspace-prefixed names must still fit in 63 characters", () => {
    assert.equal(kubernetesName("demo", "team"), "team--demo");
    assert.match(
      onlyError({ name: "a".repeat(60), workspace: "team" }),
      /the object name .* must be at most 63 characters/,
    );
  });

  test("the id must be a UUID", () => {
    assert.match(onlyError({ id: "not-a-uuid" }), /^invalid id: "not-a-uuid" must be a lowercase UUID$/);
  });
});

describe("fields", () => {
  test("image references follow the distribution grammar", () => {
    assert.deepEqual(errorsFor({ image: "127.0.0.1:5443/team/agent:v1" }), []);
    assert.match(
      onlyError({ image: "Team/Agent" }),
      /^invalid image: "Team\/Agent" is not a valid image reference/,
    );
    assert.match(onlyError({ image: "a".repeat(1025) }), /at most 1024 characters/);
  });

  test("environment keys, reserved names, sizes", () => {
    assert.match(onlyError({ environment: { "1BAD": "x" } }), /environment key: "1BAD" must consist of/);
    assert.match(onlyError({ environment: { OPENSHELL_SANDBOX_ID: "x" } }), /is set by the gateway itself/);
    assert.match(
      onlyError({ environment: { BIG: "x".repeat(LIMITS.environmentValue + 1) } }),
      /must be at most 8192 characters/,
    );
    const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`K${i}`, "v"]));
    assert.match(onlyError({ environment: many }), /has 129 entries; at most 128/);
  });

  test("labels and annotations", () => {
    assert.match(onlyError({ labels: { "bad key!": "x" } }), /labels key: "bad key!"/);
    assert.match(onlyError({ labels: { team: "no spaces" } }), /labels\[team\]: "no spaces"/);
    assert.match(onlyError({ labels: { "openshell.ai/sandbox-id": "x" } }), /reserved prefix openshell.ai\//);
    assert.deepEqual(errorsFor({ annotations: { "example.com/note": "anything at all, with spaces" } }), []);
    assert.match(
      onlyError({ annotations: { note: "x".repeat(LIMITS.annotationsBytes) } }),
      /at most 65536 bytes are allowed/,
    );
  });

  test("resources must be Kubernetes quantities", () => {
    assert.deepEqual(errorsFor({ resources: { limits: { cpu: "500m", memory: "1Gi" } } }), []);
    assert.match(
      onlyError({ resources: { limits: { memory: "1GB" } } }),
      /resources.limits.memory: "1GB" must be a Kubernetes quantity/,
    );
  });

  test("gpu counts", () => {
    assert.match(onlyError({ gpu: -1 }), /gpu: "-1" must be a whole number from 0 to 16/);
    assert.match(onlyError({ gpu: 1.5 }), /gpu/);
  });

  test("tolerations", () => {
    assert.deepEqual(
      errorsFor({ tolerations: [{ key: "gpu", operator: "Exists", effect: "NoSchedule" }] }),
      [],
    );
    assert.match(
      onlyError({ tolerations: [{ operator: "Equal", value: "x" }] }),
      /tolerations\[0\].key: must be set/,
    );
    assert.match(
      onlyError({ tolerations: [{ key: "a", effect: "Sometimes" as "NoSchedule" }] }),
      /tolerations\[0\].effect: "Sometimes"/,
    );
  });

  test("per-sandbox pull secrets: DNS subdomains, at most 32 distinct", () => {
    assert.deepEqual(errorsFor({ imagePullSecrets: ["a", " a ", "", "b.c"] }), []);
    assert.match(
      onlyError({ imagePullSecrets: ["Bad_Name"] }),
      /^invalid image pull secret: "Bad_Name" must be a DNS-1123 subdomain/,
    );
    const many = Array.from({ length: 33 }, (_, i) => `s${i}`);
    assert.match(onlyError({ imagePullSecrets: many }), /lists 33 secrets; at most 32/);
  });

  test("command entries may not contain NUL", () => {
    assert.match(onlyError({ command: ["sh", "a\u0000b"] }), /command\[1\]: .* must not contain NUL/);
  });
});
