// openshell.ext.v1.RegistryService: registry credentials as dockerconfigjson Secrets. Passwords are
// write-only: validated, written to the Secret, and never logged, echoed or returned.

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { GatewayConfig } from "../../config/settings.js";
import {
  RegistrySecretSchema,
  RegistryService,
  type RegistrySecret,
} from "../../gen/openshell/ext/v1/ext_pb.js";
import type {
  RegistryCredentialsInput,
  RegistrySecretInfo,
  RegistrySecrets,
} from "../../kubernetes/registry-secrets.js";
import { mirrorPrefixProblem } from "../../registry/image-reference.js";
import { describeValue, dns1123Label, dns1123Subdomain } from "../../validation/kubernetes-names.js";
import { toConnectError } from "../sandboxes.js";

const MAX_USERNAME = 256;
const MAX_PASSWORD = 8192;

function message(info: RegistrySecretInfo): RegistrySecret {
  return create(RegistrySecretSchema, {
    name: info.name,
    namespace: info.namespace,
    servers: [...info.servers],
    username: info.username,
    ...(info.createdAtMs !== undefined ? { createdTime: timestampFromMs(info.createdAtMs) } : {}),
  });
}

function invalid(field: string, why: string): ConnectError {
  return new ConnectError(`invalid ${field}: ${why}`, Code.InvalidArgument);
}

export function registryService(
  config: GatewayConfig,
  secrets: RegistrySecrets | undefined,
  log: Logger,
): Partial<ServiceImpl<typeof RegistryService>> {
  const enabled = (): RegistrySecrets => {
    if (!config.registrySecretManagement || !secrets) {
      throw new ConnectError(
        "registry secret management is disabled on this gateway: enable registry_secret_management (Helm: registrySecrets.manage=true), or create the secret with kubectl create secret docker-registry",
        Code.FailedPrecondition,
      );
    }
    return secrets;
  };
  const namespaceOf = (namespace: string): string => {
    const ns = namespace || config.namespace;
    const reason = dns1123Label(ns);
    if (reason) throw invalid("namespace", `${describeValue(ns)} ${reason}`);
    return ns;
  };
  const nameOf = (name: string): string => {
    const reason = dns1123Subdomain(name);
    if (reason) throw invalid("name", `${describeValue(name)} ${reason}`);
    return name;
  };
  const credentials = (req: {
    namespace: string;
    name: string;
    server: string;
    username: string;
    password: string;
  }): RegistryCredentialsInput => {
    const server = req.server.replace(/^https?:\/\//, "").replace(/\/+$/, "");
    const serverReason = server === "" ? "must not be empty" : mirrorPrefixProblem(server);
    if (serverReason)
      throw invalid(
        "server",
        `${describeValue(req.server)} ${serverReason.replace("must be a registry host with optional port and path prefix", "must be a registry host[:port]")}`,
      );
    if (req.username === "" || req.username.length > MAX_USERNAME || /[\s:]/.test(req.username)) {
      throw invalid("username", `must be 1 to ${MAX_USERNAME} characters without white space or ':'`);
    }
    // The password is checked but never described: not even its length goes into a message.
    if (req.password === "" || req.password.length > MAX_PASSWORD || /[\r\n]/.test(req.password)) {
      throw invalid("password", `must be 1 to ${MAX_PASSWORD} characters on one line`);
    }
    return {
      namespace: namespaceOf(req.namespace),
      name: nameOf(req.name),
      server,
      username: req.username,
      password: req.password,
    };
  };

  /** Create and update (rotation) differ only in the call; neither ever logs or echoes the password. */
  const write = async (verb: "create" | "update", req: Parameters<typeof credentials>[0]) => {
    const input = credentials(req);
    try {
      const info = verb === "create" ? await enabled().create(input) : await enabled().update(input);
      log.info(
        { secret: input.name, namespace: input.namespace, server: input.server, username: input.username },
        verb === "create" ? "registry secret created" : "registry secret rotated",
      );
      return { secret: message(info) };
    } catch (err) {
      throw toConnectError(err, `${verb} registry secret "${input.name}"`);
    }
  };

  return {
    createRegistrySecret: (req) => write("create", req),
    updateRegistrySecret: (req) => write("update", req),
    async listRegistrySecrets(req) {
      const namespace = namespaceOf(req.namespace);
      try {
        return { secrets: (await enabled().list(namespace)).map(message) };
      } catch (err) {
        throw toConnectError(err, "list registry secrets");
      }
    },
    async deleteRegistrySecret(req) {
      const namespace = namespaceOf(req.namespace);
      const name = nameOf(req.name);
      try {
        const deleted = await enabled().delete(namespace, name);
        if (deleted) log.info({ secret: name, namespace }, "registry secret deleted");
        return { deleted };
      } catch (err) {
        throw toConnectError(err, `delete registry secret "${name}"`);
      }
    },
  };
}
