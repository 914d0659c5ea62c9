// Decides what the driver creates: agent-sandbox Sandboxes (v1beta1 or v1alpha1) or plain pods,
// from the configuration and what the API server serves.

import { AGENT_SANDBOX_GROUP, type RenderTarget, type SandboxApiVersionName } from "../render/sandbox.js";
import type { KubeClient } from "./client.js";
import { KubernetesError } from "./types.js";

/** Preferred first: v1beta1 is agent-sandbox's storage version since v0.5.0; v1alpha1 is deprecated. */
export const SANDBOX_VERSIONS: readonly SandboxApiVersionName[] = ["v1beta1", "v1alpha1"];
export const SANDBOX_PLURAL = "sandboxes";

/**
 * Picks the target (from config.sandboxResource / sandboxApiVersion: auto, agent-sandbox, pod /
 * auto, v1beta1, v1alpha1) from the served versions of agents.x-k8s.io that list a `sandboxes` resource
 * (empty when the group is not served). Pure; throws a KubernetesError (Invalid) naming the fix when
 * the configuration asks for something the cluster does not serve.
 */
export function chooseTarget(
  resource: string,
  apiVersion: string,
  served: readonly SandboxApiVersionName[],
): RenderTarget {
  if (resource === "pod") return { resource: "pod" };
  if (resource !== "auto" && resource !== "agent-sandbox")
    throw new KubernetesError(`unknown sandbox resource kind "${resource}"`, "Invalid");
  if (apiVersion !== "auto") {
    if (apiVersion !== "v1beta1" && apiVersion !== "v1alpha1")
      throw new KubernetesError(`unknown agent-sandbox API version "${apiVersion}"`, "Invalid");
    if (served.includes(apiVersion)) return { resource: "agent-sandbox", apiVersion };
    if (resource === "auto" && served.length === 0) return { resource: "pod" };
    throw new KubernetesError(
      `${AGENT_SANDBOX_GROUP}/${apiVersion} sandboxes are not served by the cluster` +
        (served.length ? ` (it serves ${served.join(", ")}); set --sandbox-api-version auto` : "") +
        (served.length ? "" : "; install agent-sandbox or set --sandbox-resource pod"),
      "Invalid",
    );
  }
  const preferred = SANDBOX_VERSIONS.find((v) => served.includes(v));
  if (preferred) return { resource: "agent-sandbox", apiVersion: preferred };
  if (resource === "auto") return { resource: "pod" };
  throw new KubernetesError(
    `--sandbox-resource agent-sandbox: ${AGENT_SANDBOX_GROUP} (Sandbox v1beta1 or v1alpha1) is not served by the cluster; install agent-sandbox (v0.5 or later for v1beta1) or set --sandbox-resource pod`,
    "Invalid",
  );
}

interface ApiGroup {
  versions?: { version?: string }[];
}
interface ApiResourceList {
  resources?: { name?: string }[];
}

/** The agent-sandbox versions the API server serves with a `sandboxes` resource, newest first. */
export async function servedSandboxVersions(client: KubeClient): Promise<SandboxApiVersionName[]> {
  let group: ApiGroup;
  try {
    group = await client.request<ApiGroup>({
      verb: "discover",
      resource: AGENT_SANDBOX_GROUP,
      path: `/apis/${AGENT_SANDBOX_GROUP}`,
    });
  } catch (err) {
    if (err instanceof KubernetesError && err.kind === "NotFound") return [];
    throw err;
  }
  const versions = new Set((group.versions ?? []).map((v) => v.version));
  const served: SandboxApiVersionName[] = [];
  for (const version of SANDBOX_VERSIONS) {
    if (!versions.has(version)) continue;
    const list = await client.request<ApiResourceList>({
      verb: "discover",
      resource: `${AGENT_SANDBOX_GROUP}/${version}`,
      path: `/apis/${AGENT_SANDBOX_GROUP}/${version}`,
    });
    if ((list.resources ?? []).some((r) => r.name === SANDBOX_PLURAL)) served.push(version);
  }
  return served;
}
