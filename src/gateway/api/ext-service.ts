// openshell.ext.v1.SandboxExtService: what upstream's API cannot express (per-sandbox pull secrets,
// image details). Lives in its own package so upstream clients never see it.

import type { ServiceImpl } from "@connectrpc/connect";
import { SandboxExtService } from "../../gen/openshell/ext/v1/ext_pb.js";
import type { Sandboxes } from "../sandboxes.js";
import { createInputFrom, sandboxMessage, workspaceOf } from "./convert.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

export function sandboxExtService(sandboxes: Sandboxes): Partial<ServiceImpl<typeof SandboxExtService>> {
  return {
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
