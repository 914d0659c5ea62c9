// Client authentication: mTLS (verified during the TLS handshake) or a bearer token compared in constant
// time. Health stays open, as upstream's annotation says.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { TLSSocket } from "node:tls";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";

export const peerAuthorized = createContextKey<boolean>(false, {
  description: "client certificate verified",
});

const OPEN_METHODS = new Set(["/openshell.v1.OpenShell/Health"]);

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** True when the request arrived over TLS with a client certificate the configured CA signed. */
export function certificateVerified(req: IncomingMessage | Http2ServerRequest): boolean {
  const socket = req.socket as Partial<TLSSocket>;
  return socket.authorized === true && Boolean(socket.getPeerCertificate?.()?.subject);
}

export interface AuthOptions {
  /** The expected bearer token, or undefined when tokens are not accepted. */
  readonly token: string | undefined;
  /** Client certificates are accepted as proof. */
  readonly mtls: boolean;
  readonly allowUnauthenticated: boolean;
}

export function authInterceptor(options: AuthOptions): Interceptor {
  const expected = options.token !== undefined ? digest(options.token) : undefined;
  return (next) => async (req) => {
    const path = `/${req.service.typeName}/${req.method.name}`;
    if (options.allowUnauthenticated || OPEN_METHODS.has(path)) return next(req);
    if (options.mtls && req.contextValues.get(peerAuthorized)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (expected && match && timingSafeEqual(digest(match[1]!.trim()), expected)) return next(req);
    throw new ConnectError(
      match
        ? "the bearer token is not valid"
        : options.mtls
          ? "authentication required: present a client certificate signed by the gateway's client CA, or a bearer token"
          : "authentication required: send an Authorization: Bearer token",
      Code.Unauthenticated,
    );
  };
}
