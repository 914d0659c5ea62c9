// Registry credentials as Kubernetes Secrets of type kubernetes.io/dockerconfigjson, labelled as ours.
// Passwords go in and never come out: listing returns servers and usernames only.

import {
  DOCKERCONFIGJSON,
  DOCKERCONFIGJSON_KEY,
  buildDockerConfigJson,
  parsePullSecret,
} from "../registry/dockerconfig.js";
import type { KubeClient } from "./client.js";
import { KubernetesError } from "./types.js";

export const MANAGED_BY_LABEL = "openshell.ai/managed-by";
export const MANAGED_BY_VALUE = "openshell";
export const REGISTRY_SECRET_LABEL = "openshell.ai/registry-secret";

interface SecretBody {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    creationTimestamp?: string;
    resourceVersion?: string;
  };
  type?: string;
  data?: Record<string, string>;
}

export interface RegistrySecretInfo {
  readonly name: string;
  readonly namespace: string;
  readonly servers: readonly string[];
  readonly username: string;
  readonly createdAtMs: number | undefined;
}

export interface RegistryCredentialsInput {
  readonly namespace: string;
  readonly name: string;
  readonly server: string;
  readonly username: string;
  readonly password: string;
}

function info(secret: SecretBody, namespace: string): RegistrySecretInfo {
  let servers: string[] = [];
  let username = "";
  try {
    const credentials = parsePullSecret(secret.type ?? "", secret.data);
    servers = credentials.map((c) => c.key);
    username = credentials[0]?.username ?? "";
  } catch {
    // A malformed secret is still listed, with what can be said about it.
  }
  const created = secret.metadata?.creationTimestamp;
  return {
    name: secret.metadata?.name ?? "",
    namespace: secret.metadata?.namespace ?? namespace,
    servers,
    username,
    createdAtMs: created ? Date.parse(created) : undefined,
  };
}

function body(input: RegistryCredentialsInput, resourceVersion?: string): SecretBody {
  return {
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [REGISTRY_SECRET_LABEL]: "true" },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    type: DOCKERCONFIGJSON,
    data: {
      [DOCKERCONFIGJSON_KEY]: Buffer.from(
        buildDockerConfigJson(input.server, input.username, input.password),
      ).toString("base64"),
    },
  };
}

const path = (namespace: string, name?: string) =>
  `/api/v1/namespaces/${namespace}/secrets${name ? `/${name}` : ""}`;

export class RegistrySecrets {
  constructor(private readonly client: KubeClient) {}

  async create(input: RegistryCredentialsInput): Promise<RegistrySecretInfo> {
    const created = await this.client.request<SecretBody>({
      verb: "create",
      method: "POST",
      resource: "secrets",
      path: path(input.namespace),
      body: body(input),
      namespace: input.namespace,
      name: input.name,
    });
    return info(created, input.namespace);
  }

  /** Replaces the credentials of a secret this gateway manages (rotation). */
  async update(input: RegistryCredentialsInput): Promise<RegistrySecretInfo> {
    const current = await this.client.request<SecretBody>({
      verb: "get",
      resource: "secrets",
      path: path(input.namespace, input.name),
      namespace: input.namespace,
      name: input.name,
    });
    if (current.metadata?.labels?.[REGISTRY_SECRET_LABEL] !== "true") {
      throw new KubernetesError(
        `secret "${input.name}" in namespace ${input.namespace} is not managed by openshell; update it with kubectl, or delete it and create it with 'openshell registry secret create'`,
        "Forbidden",
      );
    }
    const updated = await this.client.request<SecretBody>({
      verb: "update",
      method: "PUT",
      resource: "secrets",
      path: path(input.namespace, input.name),
      body: body(input, current.metadata?.resourceVersion),
      namespace: input.namespace,
      name: input.name,
    });
    return info(updated, input.namespace);
  }

  async list(namespace: string): Promise<RegistrySecretInfo[]> {
    const list = await this.client.request<{ items: SecretBody[] }>({
      verb: "list",
      resource: "secrets",
      path: path(namespace),
      query: { labelSelector: `${REGISTRY_SECRET_LABEL}=true` },
      namespace,
    });
    return list.items.map((s) => info(s, namespace)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Deletes a managed secret; false when it did not exist. */
  async delete(namespace: string, name: string): Promise<boolean> {
    let current: SecretBody;
    try {
      current = await this.client.request<SecretBody>({
        verb: "get",
        resource: "secrets",
        path: path(namespace, name),
        namespace,
        name,
      });
    } catch (err) {
      if (err instanceof KubernetesError && err.kind === "NotFound") return false;
      throw err;
    }
    if (current.metadata?.labels?.[REGISTRY_SECRET_LABEL] !== "true") {
      throw new KubernetesError(
        `secret "${name}" in namespace ${namespace} is not managed by openshell; delete it with kubectl`,
        "Forbidden",
      );
    }
    await this.client.request({
      verb: "delete",
      method: "DELETE",
      resource: "secrets",
      path: path(namespace, name),
      namespace,
      name,
    });
    return true;
  }
}
