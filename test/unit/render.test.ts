import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { V1Pod, V1PodSpec } from "@kubernetes/client-node";
import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import type { SandboxRequest } from "../../src/render/request.js";
import {
  mergePullSecrets,
  renderSandbox,
  type RenderInputs,
  type RenderTarget,
  type SandboxObject,
} from "../../src/render/sandbox.js";

const ID = "0f9c2f59-6a8e-4b7e-9a39-2a8d1c1e7b55";
const BETA: RenderTarget = { resource: "agent-sandbox", apiVersion: "v1beta1" };
const ALPHA: RenderTarget = { resource: "agent-sandbox", apiVersion: "v1alpha1" };
const POD: RenderTarget = { resource: "pod" };
const TARGETS = [BETA, ALPHA, POD] as const;

function settings(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...defaultConfig(), ...overrides };
}

function render(
  target: RenderTarget,
  overrides: Partial<GatewayConfig> = {},
  request: Partial<SandboxRequest> = {},
  extra: Partial<RenderInputs> = {},
) {
  return renderSandbox({
    request: { id: ID, name: "demo", ...request },
    settings: settings(overrides),
    target,
    ...extra,
  });
}

function podSpecOf(
  target: RenderTarget,
  ...args: Parameters<typeof render> extends [unknown, ...infer R] ? R : never
): V1PodSpec {
  const { object } = render(target, ...args);
  return object.kind === "Pod" ? object.spec! : (object as SandboxObject).spec.podTemplate.spec;
}

const name = (t: RenderTarget) => (t.resource === "pod" ? "pod" : `Sandbox ${t.apiVersion}`);

describe("resource kinds", () => {
  test("agent-sandbox v1beta1: Sandbox with podTemplate and operatingMode Running", () => {
    const { object } = render(BETA);
    const sandbox = object as SandboxObject;
    assert.equal(sandbox.apiVersion, "agents.x-k8s.io/v1beta1");
    assert.equal(sandbox.kind, "Sandbox");
    assert.equal(sandbox.metadata.name, "demo");
    assert.equal(sandbox.metadata.namespace, "openshell");
    assert.equal(sandbox.spec.operatingMode, "Running");
    assert.equal(sandbox.spec.replicas, undefined);
    assert.equal(sandbox.spec.podTemplate.spec.containers[0]!.name, "agent");
  });

  test("agent-sandbox v1alpha1: Sandbox with replicas 1 and no operatingMode", () => {
    const sandbox = render(ALPHA).object as SandboxObject;
    assert.equal(sandbox.apiVersion, "agents.x-k8s.io/v1alpha1");
    assert.equal(sandbox.spec.replicas, 1);
    assert.equal(sandbox.spec.operatingMode, undefined);
  });

  test("pod: a plain Pod carrying the same spec", () => {
    const pod = render(POD).object as V1Pod;
    assert.equal(pod.apiVersion, "v1");
    assert.equal(pod.kind, "Pod");
    assert.deepEqual(pod.spec, podSpecOf(BETA));
  });

  test("a non-default workspace prefixes the object name and labels the workspace", () => {
    const { object } = render(BETA, {}, { workspace: "team-a" });
    assert.equal(object.metadata!.name, "team-a--demo");
    assert.equal(object.metadata!.labels!["openshell.ai/sandbox-workspace"], "team-a");
    assert.equal(render(BETA, {}, { workspace: "default" }).object.metadata!.name, "demo");
  });
});

for (const target of TARGETS) {
  describe(`pod spec (${name(target)})`, () => {
    test("managed labels on the resource and on the pod; user labels on the pod only", () => {
      const { object } = render(target, {}, { labels: { team: "ml" } });
      const managed = {
        "openshell.ai/sandbox-id": ID,
        "openshell.ai/sandbox-name": "demo",
        "openshell.ai/managed-by": "openshell",
      };
      const podLabels =
        object.kind === "Pod"
          ? object.metadata!.labels!
          : (object as SandboxObject).spec.podTemplate.metadata.labels!;
      assert.deepEqual(podLabels, { team: "ml", ...managed });
      for (const [k, v] of Object.entries(managed)) assert.equal(object.metadata!.labels![k], v);
      if (object.kind === "Sandbox") assert.equal(object.metadata!.labels!.team, undefined);
    });

    test("no pull secrets and no policy: both fields omitted", () => {
      const spec = podSpecOf(target);
      assert.equal("imagePullSecrets" in spec, false);
      assert.equal("imagePullPolicy" in spec.containers[0]!, false);
    });

    test("configured secrets and policy: pod-level secrets, policy on the agent container", () => {
      const spec = podSpecOf(target, { imagePullSecrets: ["regcred", "backup"], imagePullPolicy: "Always" });
      assert.deepEqual(spec.imagePullSecrets, [{ name: "regcred" }, { name: "backup" }]);
      assert.equal(spec.containers[0]!.imagePullPolicy, "Always");
      for (const c of spec.containers) assert.equal("imagePullSecrets" in c, false);
    });

    test("secrets apply to custom images too", () => {
      const spec = podSpecOf(
        target,
        { imagePullSecrets: ["regcred"] },
        { image: "registry.example/agent:2" },
      );
      assert.equal(spec.containers[0]!.image, "registry.example/agent:2");
      assert.deepEqual(spec.imagePullSecrets, [{ name: "regcred" }]);
    });

    test("merge order: configured, then service account (when merging), then per sandbox; de-duplicated", () => {
      const inputs = {
        imagePullSecrets: ["global", "shared"],
        mergeServiceAccountPullSecrets: true,
      };
      const spec = podSpecOf(
        target,
        inputs,
        { imagePullSecrets: ["mine", "shared", "sa-cred"] },
        { serviceAccountPullSecrets: ["sa-cred", "global"] },
      );
      assert.deepEqual(
        spec.imagePullSecrets!.map((r) => r.name),
        ["global", "shared", "sa-cred", "mine"],
      );
    });

    test("service-account secrets are ignored when merging is off", () => {
      const spec = podSpecOf(
        target,
        { imagePullSecrets: ["global"] },
        {},
        { serviceAccountPullSecrets: ["sa-cred"] },
      );
      assert.deepEqual(spec.imagePullSecrets, [{ name: "global" }]);
    });

    test("per-sandbox secrets alone", () => {
      const spec = podSpecOf(target, {}, { imagePullSecrets: [" mine ", "", "mine"] });
      assert.deepEqual(spec.imagePullSecrets, [{ name: "mine" }]);
    });

    test("workspace init container runs the sandbox image with the same policy, covered by pod-level secrets", () => {
      const spec = podSpecOf(
        target,
        {
          workspaceStorageSize: "2Gi",
          imagePullPolicy: "IfNotPresent",
          imagePullSecrets: ["regcred"],
        },
        { image: "registry.example/agent:2" },
      );
      const init = spec.initContainers ?? [];
      assert.equal(init.length, 1);
      assert.equal(init[0]!.image, "registry.example/agent:2");
      assert.equal(init[0]!.imagePullPolicy, "IfNotPresent");
      // Every container that runs the sandbox image carries the policy; the pod-level list covers them all.
      for (const c of [...init, ...spec.containers]) {
        assert.equal(c.imagePullPolicy, "IfNotPresent");
        assert.equal("imagePullSecrets" in c, false);
      }
      assert.deepEqual(spec.imagePullSecrets, [{ name: "regcred" }]);
      assert.deepEqual(spec.containers[0]!.volumeMounts, [{ name: "workspace", mountPath: "/sandbox" }]);
      if (target.resource === "pod") {
        assert.deepEqual(spec.volumes, [{ name: "workspace", emptyDir: { sizeLimit: "2Gi" } }]);
      } else {
        assert.equal(spec.volumes, undefined, "the controller derives the volume from the claim template");
      }
    });

    test("safe defaults: service account, no token, never restarted behind the user's back", () => {
      const spec = podSpecOf(target, { serviceAccountName: "sandboxes" });
      assert.equal(spec.serviceAccountName, "sandboxes");
      assert.equal(spec.automountServiceAccountToken, false);
      assert.equal(spec.restartPolicy, "Never");
      assert.equal(spec.enableServiceLinks, false);
      assert.equal(spec.containers[0]!.securityContext!.allowPrivilegeEscalation, false);
      assert.deepEqual(spec.securityContext?.seccompProfile, { type: "RuntimeDefault" });
    });

    test("environment: sorted user variables, then the gateway's own", () => {
      const spec = podSpecOf(
        target,
        { grpcEndpoint: "https://gw:8080" },
        { environment: { ZED: "1", ALPHA: "2" } },
      );
      assert.deepEqual(spec.containers[0]!.env, [
        { name: "ALPHA", value: "2" },
        { name: "ZED", value: "1" },
        { name: "OPENSHELL_SANDBOX_ID", value: ID },
        { name: "OPENSHELL_SANDBOX", value: "demo" },
        { name: "OPENSHELL_ENDPOINT", value: "https://gw:8080" },
      ]);
    });

    test("resources, GPU, runtime class, scheduling, host aliases, client TLS", () => {
      const spec = podSpecOf(
        target,
        { defaultRuntimeClassName: "gvisor", hostGatewayIp: "198.18.0.1", clientTlsSecretName: "client-tls" },
        {
          resources: { limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "500m" } },
          gpu: 2,
          nodeSelector: { pool: "gpu" },
          tolerations: [{ key: "gpu", operator: "Exists", effect: "NoSchedule" }],
        },
      );
      const agent = spec.containers[0]!;
      assert.deepEqual(agent.resources, {
        requests: { cpu: "500m" },
        limits: { cpu: "2", memory: "1Gi", "nvidia.com/gpu": "2" },
      });
      assert.equal(spec.runtimeClassName, "gvisor");
      assert.deepEqual(spec.nodeSelector, { pool: "gpu" });
      assert.deepEqual(spec.tolerations, [{ key: "gpu", operator: "Exists", effect: "NoSchedule" }]);
      assert.deepEqual(spec.hostAliases, [
        { ip: "198.18.0.1", hostnames: ["host.openshell.internal", "host.docker.internal"] },
      ]);
      assert.deepEqual(spec.volumes, [
        { name: "openshell-client-tls", secret: { secretName: "client-tls", defaultMode: 0o400 } },
      ]);
      assert.deepEqual(agent.volumeMounts, [
        { name: "openshell-client-tls", mountPath: "/etc/openshell-tls/client", readOnly: true },
      ]);
      assert.ok(
        agent.env!.some(
          (e) => e.name === "OPENSHELL_TLS_KEY" && e.value === "/etc/openshell-tls/client/tls.key",
        ),
      );
    });

    test("a request's runtime class beats the configured default", () => {
      const spec = podSpecOf(target, { defaultRuntimeClassName: "gvisor" }, { runtimeClassName: "kata" });
      assert.equal(spec.runtimeClassName, "kata");
    });

    test("command and args", () => {
      const spec = podSpecOf(target, {}, { command: ["sh", "-c"], args: ["sleep 1"] });
      assert.deepEqual(spec.containers[0]!.command, ["sh", "-c"]);
      assert.deepEqual(spec.containers[0]!.args, ["sleep 1"]);
    });
  });
}

describe("images and mirrors", () => {
  test("an empty image falls back to the configured default", () => {
    const result = render(BETA, { defaultImage: "busybox:1.36" });
    assert.equal(result.requestedImage, "busybox:1.36");
    assert.equal(result.effectiveImage, "busybox:1.36");
    assert.equal(result.object.metadata!.annotations!["openshell.ai/effective-image"], undefined);
  });

  test("a mirror rule rewrites the pulled image; both references are recorded", () => {
    const result = render(
      BETA,
      { registryMirrors: { "docker.io": "127.0.0.1:5443/hub" } },
      { image: "busybox:1.36" },
    );
    assert.equal(result.requestedImage, "busybox:1.36");
    assert.equal(result.effectiveImage, "127.0.0.1:5443/hub/library/busybox:1.36");
    const sandbox = result.object as SandboxObject;
    assert.equal(
      sandbox.spec.podTemplate.spec.containers[0]!.image,
      "127.0.0.1:5443/hub/library/busybox:1.36",
    );
    assert.equal(sandbox.metadata.annotations!["openshell.ai/requested-image"], "busybox:1.36");
    assert.equal(
      sandbox.metadata.annotations!["openshell.ai/effective-image"],
      "127.0.0.1:5443/hub/library/busybox:1.36",
    );
  });
});

test("mergePullSecrets keeps the first occurrence and drops empties", () => {
  assert.deepEqual(mergePullSecrets(["a", " b"], undefined, ["b", "", "c", "a"]), ["a", "b", "c"]);
  assert.deepEqual(mergePullSecrets(), []);
});

test("rendering is deterministic for the same request", () => {
  const request = {
    environment: { B: "1", A: "2" },
    labels: { y: "1", x: "2" },
    annotations: { b: "1", a: "2" },
  };
  assert.equal(
    JSON.stringify(render(BETA, {}, request).object),
    JSON.stringify(render(BETA, {}, request).object),
  );
});
