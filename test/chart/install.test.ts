// The chart on the real cluster (test bed tier full): the gateway image built without Docker
// (deploy/docker/build-image.sh) is pushed to the authenticated registry; `helm install` with
// `imagePullSecrets` makes the gateway pod pull and become Ready, while a release without the secret stays
// in ErrImagePull/ImagePullBackOff (negative control). A sandbox created through the installed gateway
// pulls its private image with `server.sandboxImagePullSecrets` plus the sandbox service account's
// imagePullSecrets (`server.mergeServiceAccountPullSecrets`). The gateway runs on exactly the RBAC the chart
// grants: no "forbidden" in its log, no list/watch of every ServiceAccount or Secret; a per-sandbox pull
// secret not named in the values is refused with PERMISSION_DENIED naming it, and is accepted after
// `helm upgrade --set rbac.readAllPullSecrets=true` (which also turns on the registry probe with a CA bundle
// from a Secret and registry secret management, and rolls the pod); the registry secret API then creates,
// lists, updates and deletes a pull secret on the chart's RBAC. `helm uninstall` leaves nothing behind. Phase
// timings are reported as test diagnostics.
//
// A missing tool or cluster FAILS the test with the reason: nothing skips.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import type { V1Pod } from "@kubernetes/client-node";

import {
  createPullSecret,
  deleteNamespace,
  describePod,
  pushTestImage,
  requireCluster,
  waitFor,
  waitForContainerWaiting,
} from "../support/cluster.js";
import {
  CHART,
  connectError,
  connectUnary,
  createNamespace,
  gatewayImage,
  must,
  podReady,
  run,
  stopwatch,
  testbedTool,
} from "../support/chart.js";

const namespaces: string[] = [];
after(async () => {
  for (const ns of namespaces) await deleteNamespace(ns);
});

test("helm install on the full test bed: private gateway image, negative control, private sandbox image, least-privilege RBAC, upgrade rolls, clean uninstall", async (t) => {
  const mark = stopwatch(t);
  const c = await requireCluster("full");
  const helm = testbedTool("TESTBED_HELM");
  const kubectl = testbedTool("TESTBED_KUBECTL");
  const kc = ["--kubeconfig", c.kubeconfigPath];
  const creds = { server: c.registry.host, user: c.registry.user, password: c.registry.password };

  // the gateway image, built without Docker and pushed to the authenticated registry (once per tree)
  const image = gatewayImage(c);
  t.diagnostic(
    `gateway image ${image.repository}:${image.tag} (${image.built ? "built" : "already pushed"})`,
  );
  const sandboxImage = await pushTestImage("openshell-test/sandbox", "busybox");
  mark("gateway image build and push, sandbox image push");

  // the gateway runs under the restricted Pod Security Standard; sandboxes in their own namespace
  const ns = await createNamespace(c, "chart-gw", { "pod-security.kubernetes.io/enforce": "restricted" });
  const sandboxNs = await createNamespace(c, "chart-sbx");
  const negNs = await createNamespace(c, "chart-neg", { "pod-security.kubernetes.io/enforce": "restricted" });
  namespaces.push(ns, sandboxNs, negNs);
  await createPullSecret(ns, "gateway-regcred", creds);
  await createPullSecret(sandboxNs, "sandbox-regcred", creds);
  // the sandbox service account names a pull secret of its own (merged by the gateway), and a per-sandbox
  // secret that no value names
  await createPullSecret(sandboxNs, "sa-regcred", creds);
  await createPullSecret(sandboxNs, "team-regcred", creds);
  await c.core.createNamespacedServiceAccount({
    namespace: sandboxNs,
    body: { metadata: { name: "sandboxes" }, imagePullSecrets: [{ name: "sa-regcred" }] },
  });

  const common = [
    "-f",
    path.join(CHART, "ci", "values-plaintext.yaml"),
    "--set",
    `image.repository=${image.repository}`,
    "--set",
    `image.tag=${image.tag}`,
    "--set",
    "image.pullPolicy=Always",
    // no dynamic volume provisioner in the test bed: SQLite on an emptyDir
    "--set",
    "persistence.enabled=false",
  ];
  // scenario 1: the gateway pod pulls its image from the authenticated registry with imagePullSecrets
  let gw: V1Pod | undefined;
  await t.test(
    "scenario 1: helm install with imagePullSecrets → the gateway pod pulls and becomes Ready",
    async () => {
      must(
        run(helm, [
          "install",
          "openshell",
          CHART,
          "-n",
          ns,
          ...kc,
          ...common,
          "--set",
          "imagePullSecrets[0].name=gateway-regcred",
          "--set",
          `server.sandboxNamespace=${sandboxNs}`,
          "--set",
          `server.sandboxImage=${sandboxImage}`,
          "--set",
          "server.sandboxImagePullSecrets[0].name=sandbox-regcred",
          "--set",
          "server.sandboxImagePullPolicy=Always",
          "--set",
          "server.sandboxServiceAccount=sandboxes",
          "--set",
          "server.mergeServiceAccountPullSecrets=true",
          // the service account's pull secret is read by the pre-flight check: it must be readable
          "--set",
          "rbac.extraReadableSecrets[0]=sa-regcred",
        ]),
        "helm install (with imagePullSecrets)",
      );
      gw = await podReady(c, ns, "openshell-0", 240_000);
      assert.deepEqual(
        gw.spec?.imagePullSecrets?.map((r) => r.name),
        ["gateway-regcred"],
      );
      assert.equal(gw.spec?.securityContext?.runAsUser, 65532);
    },
  );
  mark("scenario 1: helm install, gateway pod Ready (private image pulled with imagePullSecrets)");
  assert.ok(gw, "scenario 1 failed: no Ready gateway pod for the rest of this test");

  // scenario 2 (negative control): the same release without imagePullSecrets cannot pull
  await t.test(
    "scenario 2: without imagePullSecrets → the gateway pod is in ErrImagePull/ImagePullBackOff",
    async () => {
      must(
        run(helm, ["install", "neg", CHART, "-n", negNs, ...kc, ...common]),
        "helm install (negative control)",
      );
      const neg = await waitForContainerWaiting(
        negNs,
        "neg-openshell-0",
        ["ErrImagePull", "ImagePullBackOff"],
        120_000,
      );
      assert.match(neg.message, /401|unauthorized|authorization|authentication|no basic auth credentials/i);
    },
  );
  mark("scenario 2: negative control in ErrImagePull/ImagePullBackOff");

  // what the gateway's ServiceAccount may do in the sandbox namespace: nothing namespace-wide on
  // ServiceAccounts or Secrets, only the configured names
  const as = `system:serviceaccount:${ns}:openshell`;
  const canI = (verb: string, resource: string) => {
    const r = run(kubectl, [...kc, "auth", "can-i", verb, resource, "-n", sandboxNs, "--as", as]);
    assert.ok(r.status === 0 || r.status === 1, `kubectl auth can-i: ${r.stderr}`);
    return r.stdout.trim() === "yes";
  };
  for (const [verb, resource, allowed] of [
    ["list", "serviceaccounts", false],
    ["watch", "serviceaccounts", false],
    ["get", "serviceaccounts/default", false],
    ["list", "serviceaccounts/sandboxes", true],
    ["watch", "serviceaccounts/sandboxes", true],
    ["list", "secrets", false],
    ["get", "secrets/team-regcred", false],
    ["list", "secrets/sandbox-regcred", true],
    ["watch", "secrets/sa-regcred", true],
  ] as const) {
    assert.equal(canI(verb, resource), allowed, `can-i ${verb} ${resource} -n ${sandboxNs}`);
  }
  const clusterWide = run(kubectl, [
    ...kc,
    "auth",
    "can-i",
    "list",
    "secrets",
    "--all-namespaces",
    "--as",
    as,
  ]);
  assert.equal(
    clusterWide.stdout.trim(),
    "no",
    "no cluster-wide Secret list (the cross-namespace hint may 403)",
  );

  // a sandbox through the installed gateway's API (Connect JSON on the pod IP)
  const podIp = gw.status?.podIP;
  assert.ok(podIp, "gateway pod IP");
  const res = await connectUnary(`http://${podIp}:8080`, "/openshell.v1.OpenShell/CreateSandbox", {
    name: "chart-sbx",
  });
  assert.equal(res.status, 200, `CreateSandbox: ${res.status} ${res.body}`);
  let sandboxPod: V1Pod | undefined;
  await waitFor(
    async () => {
      const pods = await c.core.listNamespacedPod({
        namespace: sandboxNs,
        labelSelector: "openshell.ai/managed-by=openshell",
      });
      sandboxPod = pods.items[0];
      return sandboxPod?.status?.containerStatuses?.some((s) => s.imageID) ? sandboxPod : undefined;
    },
    {
      timeoutMs: 180_000,
      description: `a sandbox pod in ${sandboxNs} that pulled its image (${describePod(sandboxPod)})`,
    },
  );
  assert.deepEqual(
    sandboxPod?.spec?.imagePullSecrets?.map((r) => r.name),
    ["sandbox-regcred", "sa-regcred"],
    "the configured pull secret, then the sandbox service account's (merged)",
  );
  assert.equal(sandboxPod?.spec?.serviceAccountName, "sandboxes");
  assert.doesNotMatch(JSON.stringify(sandboxPod?.spec), /gateway-regcred/);
  mark("CreateSandbox through the gateway: sandbox pod pulled its private image");

  // the gateway's watches all work on the chart's RBAC: nothing was refused
  const gatewayLog = () => must(run(kubectl, [...kc, "logs", "-n", ns, "openshell-0"]), "kubectl logs");
  assert.doesNotMatch(gatewayLog(), /forbidden/i, "the gateway log shows no RBAC refusal");

  // a per-sandbox pull secret no value names: the gateway may not read it, so the create is refused
  const extCreate = (origin: string, name: string) =>
    connectUnary(origin, "/openshell.ext.v1.SandboxExtService/CreateSandboxExt", {
      request: { name },
      imagePullSecrets: ["team-regcred"],
    });
  const refused = await extCreate(`http://${podIp}:8080`, "chart-sbx-team");
  const refusal = connectError(refused);
  assert.notEqual(
    refused.status,
    200,
    `CreateSandboxExt with an unreadable secret must fail: ${refused.body}`,
  );
  assert.match(refusal.message, /team-regcred/, "the refusal names the secret");
  assert.match(refusal.message, /forbidden/i, "the refusal says RBAC refused the read");
  // checked last, so the rest of the install is exercised whatever code the gateway chose
  const refusalCode = `${refused.status} ${refusal.code}`;
  mark("per-sandbox pull secret refused without rbac.readAllPullSecrets");

  // registry secret management is off: the API says how to turn it on
  const registryApi = (origin: string, method: string, body: unknown) =>
    connectUnary(origin, `/openshell.ext.v1.RegistryService/${method}`, body);
  const disabled = await registryApi(`http://${podIp}:8080`, "ListRegistrySecrets", {});
  assert.equal(connectError(disabled).code, "failed_precondition", `ListRegistrySecrets: ${disabled.body}`);
  assert.match(connectError(disabled).message, /registrySecrets\.manage=true/);

  // the registry's CA, for the probe's caBundle (the probe itself cannot reach 127.0.0.1 from the pod, so
  // preflight only warns; the pod must start, i.e. read the mounted bundle as user 65532)
  await c.core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: "registry-ca" },
      stringData: { "ca.crt": readFileSync(c.registry.caPath, "utf8") },
    },
  });
  // upgrade: a configuration change rolls the gateway pod (checksum/gateway-config) and it comes back Ready
  must(
    run(helm, [
      "upgrade",
      "openshell",
      CHART,
      "-n",
      ns,
      ...kc,
      "--reuse-values",
      "--set",
      "server.logLevel=debug",
      "--set",
      "rbac.readAllPullSecrets=true",
      "--set",
      "server.pullSecretPreflight=warn",
      "--set",
      "server.registryProbe.enabled=true",
      "--set",
      "server.registryProbe.caBundle.secretName=registry-ca",
      "--set",
      "registrySecrets.manage=true",
    ]),
    "helm upgrade",
  );
  await waitFor(
    async () => {
      const p = await c.core.readNamespacedPod({ name: "openshell-0", namespace: ns }).catch(() => undefined);
      return p?.metadata?.uid && p.metadata.uid !== gw?.metadata?.uid ? p : undefined;
    },
    { timeoutMs: 120_000, description: "the gateway pod to be replaced after helm upgrade" },
  );
  const upgraded = await podReady(c, ns, "openshell-0", 240_000);
  assert.notEqual(
    upgraded.metadata?.annotations?.["checksum/gateway-config"],
    gw.metadata?.annotations?.["checksum/gateway-config"],
  );
  assert.ok(
    upgraded.spec?.volumes?.some((v) => v.name === "registry-ca" && v.secret?.secretName === "registry-ca"),
    "the probe's CA bundle is mounted",
  );
  mark("helm upgrade: gateway pod replaced and Ready (CA bundle mounted)");

  // with rbac.readAllPullSecrets the per-sandbox secret is readable: the create goes through and the pod pulls
  const upgradedIp = upgraded.status?.podIP;
  assert.ok(upgradedIp, "upgraded gateway pod IP");
  const accepted = await extCreate(`http://${upgradedIp}:8080`, "chart-sbx-team");
  assert.equal(
    accepted.status,
    200,
    `CreateSandboxExt after readAllPullSecrets: ${accepted.status} ${accepted.body}`,
  );
  let teamPod: V1Pod | undefined;
  await waitFor(
    async () => {
      const pods = await c.core.listNamespacedPod({
        namespace: sandboxNs,
        labelSelector: "openshell.ai/managed-by=openshell",
      });
      teamPod = pods.items.find((p) => p.spec?.imagePullSecrets?.some((r) => r.name === "team-regcred"));
      return teamPod?.status?.containerStatuses?.some((s) => s.imageID) ? teamPod : undefined;
    },
    {
      timeoutMs: 180_000,
      description: `the per-sandbox secret's sandbox pod to pull its image (${describePod(teamPod)})`,
    },
  );
  assert.deepEqual(
    teamPod?.spec?.imagePullSecrets?.map((r) => r.name),
    ["sandbox-regcred", "sa-regcred", "team-regcred"],
  );
  // the probe ran with the mounted bundle (and could not reach the test bed's 127.0.0.1 registry: a warning)
  await waitFor(() => /registry probe/.test(gatewayLog()), {
    timeoutMs: 15_000,
    description: "the registry probe's warning in the gateway log",
  });
  mark("per-sandbox pull secret accepted with rbac.readAllPullSecrets; sandbox pod pulled");

  // registrySecrets.manage: the registry secret API works on the chart's Role (create, get+update, list by
  // label, get+delete) and refuses to touch a Secret it did not create
  const origin = `http://${upgradedIp}:8080`;
  const credentials = { server: c.registry.host, username: c.registry.user, password: c.registry.password };
  const created = await registryApi(origin, "CreateRegistrySecret", {
    name: "openshell-registry",
    ...credentials,
  });
  assert.equal(created.status, 200, `CreateRegistrySecret: ${created.status} ${created.body}`);
  const updated = await registryApi(origin, "UpdateRegistrySecret", {
    name: "openshell-registry",
    ...credentials,
  });
  assert.equal(updated.status, 200, `UpdateRegistrySecret: ${updated.status} ${updated.body}`);
  const listed = await registryApi(origin, "ListRegistrySecrets", {});
  assert.equal(listed.status, 200, `ListRegistrySecrets: ${listed.status} ${listed.body}`);
  const names = (JSON.parse(listed.body) as { secrets?: { name: string }[] }).secrets?.map((x) => x.name);
  assert.deepEqual(names, ["openshell-registry"], "only the gateway's own secrets are listed");
  assert.ok(!listed.body.includes(c.registry.password), "no password comes back");
  assert.doesNotMatch(gatewayLog(), /forbidden/i, "no RBAC refusal in the upgraded gateway's log");
  const foreign = await registryApi(origin, "DeleteRegistrySecret", { name: "sandbox-regcred" });
  assert.equal(
    connectError(foreign).code,
    "permission_denied",
    `DeleteRegistrySecret (foreign): ${foreign.body}`,
  );
  const deleted = await registryApi(origin, "DeleteRegistrySecret", { name: "openshell-registry" });
  assert.equal(deleted.status, 200, `DeleteRegistrySecret: ${deleted.status} ${deleted.body}`);
  assert.deepEqual(JSON.parse(deleted.body), { deleted: true });
  mark("registry secret API: create, update, list, delete on the chart's RBAC");

  // uninstall: nothing of the release is left (no PVC either: persistence is off here)
  for (const [release, namespace] of [
    ["openshell", ns],
    ["neg", negNs],
  ] as const) {
    must(
      run(helm, ["uninstall", release, "-n", namespace, ...kc, "--wait", "--timeout", "2m"]),
      `helm uninstall ${release}`,
    );
  }
  for (const namespace of [ns, sandboxNs, negNs]) {
    const left = must(
      run(kubectl, [
        ...kc,
        "get",
        "all,configmaps,serviceaccounts,roles,rolebindings,networkpolicies,persistentvolumeclaims",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/part-of=openshell",
        "-o",
        "name",
      ]),
      "kubectl get leftovers",
    );
    assert.deepEqual(
      left.split("\n").filter((l) => l.trim() !== ""),
      [],
      `helm uninstall leaves nothing in ${namespace}`,
    );
  }
  mark("helm uninstall x2, nothing left");

  assert.equal(
    refusalCode,
    "403 permission_denied",
    `an unreadable per-sandbox pull secret is a PERMISSION_DENIED (HTTP 403): ${refused.body}`,
  );
});
