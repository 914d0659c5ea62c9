// Wire-compatibility check: our generated descriptors (src/gen) against the
// facts listing of the upstream Python SDK's descriptors
// (proto/upstream-sdk-0.1.5.descriptor.txt, made by scripts/proto-dump-sdk.py).
// No Python is needed here; the listing is committed.
//
//   node --import tsx --test test/interop/descriptor.test.ts

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createRegistry } from "@bufbuild/protobuf";

import { file_google_rpc_error_details } from "../../src/gen/google/rpc/error_details_pb.js";
import { file_openshell_datamodel_v1_datamodel } from "../../src/gen/openshell/datamodel/v1/datamodel_pb.js";
import {
  CreateSandboxExtRequestSchema,
  file_openshell_ext_v1_ext,
  SandboxExtService,
} from "../../src/gen/openshell/ext/v1/ext_pb.js";
import { file_openshell_sandbox_v1_sandbox } from "../../src/gen/openshell/sandbox/v1/sandbox_pb.js";
import { file_openshell_v1_openshell, OpenShell } from "../../src/gen/openshell/v1/openshell_pb.js";
import {
  canonicalEnum,
  canonicalMessage,
  enumFacts,
  loadDescriptorFacts,
  messageFacts,
  reachableFrom,
  reachableTypes,
  rpcFacts,
} from "./descriptor-facts.js";

const FACTS_PATH = new URL("../../proto/upstream-sdk-0.1.5.descriptor.txt", import.meta.url);
const SERVICE = "openshell.v1.OpenShell";
const RPCS = [
  "Health",
  "CreateSandbox",
  "GetSandbox",
  "ListSandboxes",
  "DeleteSandbox",
  "WatchSandbox",
  "ExecSandbox",
  "StopSandbox",
  "StartSandbox",
] as const;

// What openshell/errors.py decodes from grpc-status-details-bin.
const ERROR_DETAILS = ["google.rpc.BadRequest", "google.rpc.ErrorInfo", "google.rpc.RetryInfo"] as const;

const facts = loadDescriptorFacts(FACTS_PATH);
const reachable = reachableTypes(facts, SERVICE, RPCS);
for (const name of reachableFrom(facts, ERROR_DETAILS)) reachable.add(name);
const ours = createRegistry(
  file_google_rpc_error_details,
  file_openshell_v1_openshell,
  file_openshell_datamodel_v1_datamodel,
  file_openshell_sandbox_v1_sandbox,
  file_openshell_ext_v1_ext,
);

describe("upstream SDK descriptor facts", () => {
  test("listing parses and covers the sandbox API", () => {
    assert.ok(facts.messages.size > 100, `only ${facts.messages.size} messages parsed`);
    assert.ok(reachable.size >= 60, `only ${reachable.size} reachable types`);
    for (const name of [
      "openshell.v1.CreateSandboxRequest",
      "openshell.v1.SandboxPhase",
      "openshell.datamodel.v1.ObjectMeta",
    ]) {
      assert.ok(reachable.has(name), `${name} not reachable`);
    }
  });

  test("comparison is not vacuous: a changed field number is detected", () => {
    const upstream = facts.messages.get("openshell.v1.CreateSandboxRequest");
    assert.ok(upstream);
    const broken = structuredClone(upstream);
    const spec = broken.fields.find((f) => f.name === "spec");
    assert.ok(spec);
    spec.number = 99;
    assert.throws(() => assert.deepStrictEqual(canonicalMessage(broken), canonicalMessage(upstream)));
  });
});

describe(`service ${SERVICE}`, () => {
  test("fully-qualified name and package match", () => {
    assert.equal(OpenShell.typeName, SERVICE);
    assert.equal(file_openshell_v1_openshell.proto.package, "openshell.v1");
  });

  test("declares exactly the nine RPCs", () => {
    assert.deepStrictEqual(OpenShell.methods.map((m) => m.name).sort(), [...RPCS].sort());
  });

  const upstreamRpcs = facts.services.get(SERVICE) ?? [];
  const ourRpcs = rpcFacts(OpenShell);
  for (const name of RPCS) {
    test(`rpc ${name}: request/response types and streaming match`, () => {
      assert.deepStrictEqual(
        ourRpcs.find((r) => r.name === name),
        upstreamRpcs.find((r) => r.name === name),
      );
    });
  }
});

describe("messages and enums reachable from the nine RPCs and the SDK's error details", () => {
  for (const typeName of [...reachable].sort()) {
    if (typeName.startsWith("google.protobuf.")) {
      // Well-known types come from @bufbuild/protobuf/wkt, not from src/gen.
      test(`${typeName} is a well-known type`, () => {
        const wkt = ["Timestamp", "Duration", "Struct"].map((n) => `google.protobuf.${n}`);
        assert.ok(wkt.includes(typeName), `unexpected google type ${typeName}`);
      });
      continue;
    }
    const upstreamMessage = facts.messages.get(typeName);
    if (upstreamMessage) {
      test(`message ${typeName}`, () => {
        const desc = ours.getMessage(typeName);
        assert.ok(desc, `message ${typeName} missing from src/gen`);
        assert.deepStrictEqual(canonicalMessage(messageFacts(desc)), canonicalMessage(upstreamMessage));
      });
      continue;
    }
    const upstreamEnum = facts.enums.get(typeName);
    test(`enum ${typeName}`, () => {
      assert.ok(upstreamEnum, `${typeName} is neither a message nor an enum in the listing`);
      const desc = ours.getEnum(typeName);
      assert.ok(desc, `enum ${typeName} missing from src/gen`);
      assert.deepStrictEqual(canonicalEnum(enumFacts(desc)), canonicalEnum(upstreamEnum));
    });
  }
});

describe("openshell.ext.v1 reuses the upstream messages", () => {
  test("CreateSandboxExt wraps CreateSandboxRequest and returns SandboxResponse", () => {
    const method = SandboxExtService.method.createSandboxExt;
    assert.equal(method.output.typeName, "openshell.v1.SandboxResponse");
    const request = CreateSandboxExtRequestSchema.field.request;
    assert.equal(request?.message?.typeName, "openshell.v1.CreateSandboxRequest");
    assert.equal(CreateSandboxExtRequestSchema.field.imagePullSecrets?.fieldKind, "list");
  });

  test("no registry response message carries a password", () => {
    for (const method of ours.getService("openshell.ext.v1.RegistryService")?.methods ?? assert.fail()) {
      const walk = (typeName: string, seen: Set<string>): void => {
        if (seen.has(typeName)) return;
        seen.add(typeName);
        const message = ours.getMessage(typeName);
        for (const field of message?.fields ?? []) {
          assert.notEqual(field.name, "password", `${typeName} exposes a password`);
          if (field.message) walk(field.message.typeName, seen);
        }
      };
      walk(method.output.typeName, new Set());
    }
  });
});
