// The raw side of the create comparison: a direct client of the API server that keeps its TLS
// connections alive (as kubectl and client-go do), built from the same kubeconfig. The gateway's own
// KubeClient is measured as a second raw arm, because it opens a new TLS connection per call
// (client-node's applyToHTTPSOptions returns a new https.Agent each time).

import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export class KeepAliveClient {
  private constructor(
    private readonly server: URL,
    private readonly agent: https.Agent,
    private readonly headers: Record<string, string>,
  ) {}

  static async create(kc: KubeConfig, maxSockets: number): Promise<KeepAliveClient> {
    const options: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(options);
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      ...(options.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.rejectUnauthorized } : {}),
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.headers ?? {})) if (typeof v === "string") headers[k] = v;
    return new KeepAliveClient(new URL(kc.getCurrentCluster()?.server ?? ""), agent, headers);
  }

  /** POSTs a JSON body; resolves on 2xx, rejects with the status and message otherwise. */
  post(path: string, body: unknown): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, this.server),
        {
          method: "POST",
          agent: this.agent,
          headers: {
            ...this.headers,
            Accept: "application/json",
            "Content-Type": "application/json",
            "Content-Length": payload.length,
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else {
              const text = Buffer.concat(chunks).toString("utf8");
              let message = text.slice(0, 300);
              try {
                message = (JSON.parse(text) as { message?: string }).message ?? message;
              } catch {
                // not JSON
              }
              reject(new Error(`POST ${path}: ${status} ${message}`));
            }
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`POST ${path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
