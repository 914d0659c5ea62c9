// The rendered objects validate against the Pod schema (Kubernetes OpenAPI) and the agent-sandbox CRD
// schemas; a deliberately broken object does not. The real API server check is in test/testbed/.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import { renderSandbox, type RenderTarget, type SandboxObject } from "../../src/render/sandbox.js";
import type { SandboxRequest } from "../../src/render/request.js";
import { schemaErrors, validatePod, validateSandbox } from "../support/schemas.js";

const request: SandboxRequest = {
  id: "0f9c2f59-6a8e-4b7e-9a39-2a8d1c1e7b55",
  name: "demo",
  image: "127.0.0.1:5443/team/agent:v1",
  environment: { FOO: "bar" },
  command: ["sleep", "3600"],
  labels: { team: "ml" },
  annotations: { "example.com/note": "hello" },
  resources: { limits: { cpu: "1", memory: "256Mi" }, requests: { cpu: "100m" } },
  gpu: 1,
  runtimeClassName: "runc",
  nodeSelector: { pool: "a" },
  tolerations: [{ key: "gpu", operator: "Exists", effect: "NoSchedule" }],
  imagePullSecrets: ["per-sandbox"],
};

const fullSettings: GatewayConfig = {
  ...defaultConfig(),
  imagePullSecrets: ["regcred"],
  imagePullPolicy: "IfNotPresent",
  grpcEndpoint: "https://gw:8080",
  clientTlsSecretName: "client-tls",
  hostGatewayIp: "198.18.0.1",
  workspaceStorageSize: "2Gi",
  workspaceStorageClass: "standard",
};

const variants: [string, GatewayConfig][] = [
  ["defaults", defaultConfig()],
  ["every option", fullSettings],
];

describe("Pod schema", () => {
  for (const [label, settings] of variants) {
    test(`pod (${label}) validates`, () => {
      const { object } = renderSandbox({ request, settings, target: { resource: "pod" } });
      assert.deepEqual(schemaErrors(validatePod(), object), []);
    });
  }

  test("the validator rejects a broken pod (unknown field, missing container name)", () => {
    const { object } = renderSandbox({ request, settings: defaultConfig(), target: { resource: "pod" } });
    const broken = structuredClone(object) as {
      spec: { imagePullSecret?: unknown; containers: { name?: string }[] };
    };
    broken.spec.imagePullSecret = [{ name: "typo" }];
    delete broken.spec.containers[0]!.name;
    const errors = schemaErrors(validatePod(), broken);
    assert.ok(
      errors.some((e) => e.includes("imagePullSecret")),
      errors.join("\n"),
    );
    assert.ok(
      errors.some((e) => e.includes("name")),
      errors.join("\n"),
    );
  });
});

describe("agent-sandbox CRD schemas", () => {
  for (const apiVersion of ["v1beta1", "v1alpha1"] as const) {
    for (const [label, settings] of variants) {
      test(`Sandbox ${apiVersion} (${label}) validates`, () => {
        const target: RenderTarget = { resource: "agent-sandbox", apiVersion };
        const { object } = renderSandbox({ request, settings, target });
        assert.deepEqual(schemaErrors(validateSandbox(apiVersion), object), []);
      });
    }

    test(`Sandbox ${apiVersion}: the validator rejects a wrong field for this version`, () => {
      const other = apiVersion === "v1beta1" ? "v1alpha1" : "v1beta1";
      const { object } = renderSandbox({
        request,
        settings: defaultConfig(),
        target: { resource: "agent-sandbox", apiVersion: other },
      });
      const errors = schemaErrors(validateSandbox(apiVersion), { ...(object as SandboxObject), apiVersion });
      assert.ok(errors.length > 0, "operatingMode and replicas each belong to one version only");
    });
  }
});
