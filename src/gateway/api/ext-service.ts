// openshell.ext.v1.SandboxExtService: what upstream's API cannot express (per-sandbox pull secrets,
// image details). Lives in its own package so upstream clients never see it.

import type { ServiceImpl } from "@connectrpc/connect";
import { SandboxExtService } from "../../gen/openshell/ext/v1/ext_pb.js";
import { toConnectError, type Sandboxes } from "../sandboxes.js";
import type { GatewayConfig } from "../../config/settings.js";
import { VERSION } from "../../version.js";
import { createInputFrom, sandboxMessage, workspaceOf } from "./convert.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

/** Well under gRPC's default 4 MiB message limit. */
export const OUTPUT_LIMIT_BYTES = 1024 * 1024;

export function sandboxExtService(
  sandboxes: Sandboxes,
  config: GatewayConfig,
): Partial<ServiceImpl<typeof SandboxExtService>> {
  return {
    async getSandboxOutput(req) {
      const text = await sandboxes.output(
        workspaceOf(req.workspaceScope),
        req.name,
        req.tailLines,
        OUTPUT_LIMIT_BYTES + 1,
      );
      const data = Buffer.from(text, "utf8");
      return { data: data.subarray(0, OUTPUT_LIMIT_BYTES), truncated: data.length > OUTPUT_LIMIT_BYTES };
    },

    async getGatewayInfo() {
      const target = await sandboxes.target();
      let pullPath;
      try {
        pullPath = await sandboxes.gatewayPullPath();
      } catch (err) {
        throw toConnectError(err, "check the configured pull path");
      }
      return {
        version: VERSION,
        driver: "kubernetes",
        sandboxResource: target.resource === "pod" ? "pod" : `agent-sandbox/${target.apiVersion}`,
        namespace: config.namespace,
        defaultImage: pullPath.image,
        effectiveDefaultImage: pullPath.effectiveImage,
        imagePullSecrets: [...config.imagePullSecrets],
        pullSecretPreflight: config.pullSecretPreflight,
        registryProbe: config.registryProbe,
        findings: pullPath.findings.map((f) => ({
          reason: f.reason,
          severity: f.severity,
          message: f.message,
          fix: f.fix,
        })),
      };
    },

    async createSandboxExt(req) {
      if (!req.request) throw new ConnectError("invalid request: must be set", Code.InvalidArgument);
      const view = await sandboxes.create(createInputFrom(req.request, req.imagePullSecrets));
      return { sandbox: sandboxMessage(view) };
    },

    async getSandboxDetail(req) {
      const view = await sandboxes.get(workspaceOf(req.workspaceScope), req.name);
      const detail = await sandboxes.detail(view.record);
      return {
        sandboxId: view.record.id,
        name: view.record.name,
        requestedImage: detail.requestedImage,
        effectiveImage: detail.effectiveImage,
        imagePullSecrets: [...detail.imagePullSecrets],
        ...(view.record.failure
          ? {
              pullFailure: {
                reason: view.record.failure.reason,
                message: view.record.failure.message,
                observedTime: timestampFromMs(view.record.failure.observedAtMs),
              },
            }
          : {}),
      };
    },
  };
}
