// What every command gets: the selected gateway (resolved lazily), clients, output helpers.

import type { DescService } from "@bufbuild/protobuf";
import type { Client, Transport } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  WorkspaceSelectorSchema,
  type WorkspaceSelector,
} from "../gen/openshell/datamodel/v1/datamodel_pb.js";
import { resolveTarget, type GatewayTarget, type TargetFlags } from "./gateways.js";
import { colourEnabled, render, styler, type Column, type OutputFormat, type Styler } from "./output.js";
import { client, createTransport } from "./transport.js";

export interface GlobalOptions {
  gateway?: string;
  caFile?: string;
  clientCert?: string;
  clientKey?: string;
  tokenFile?: string;
  workspace: string;
  color: boolean;
}

export class CliContext {
  private target: GatewayTarget | undefined;
  private cachedTransport: Transport | undefined;
  exitCode = 0;

  constructor(
    readonly globals: () => GlobalOptions,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  gateway(): GatewayTarget {
    const g = this.globals();
    const flags: TargetFlags = {
      ...(g.gateway ? { gateway: g.gateway } : {}),
      ...(g.caFile ? { caFile: g.caFile } : {}),
      ...(g.clientCert ? { certFile: g.clientCert } : {}),
      ...(g.clientKey ? { keyFile: g.clientKey } : {}),
      ...(g.tokenFile ? { tokenFile: g.tokenFile } : {}),
    };
    this.target ??= resolveTarget(flags, this.env);
    return this.target;
  }

  /** The gateway URL for messages, or a placeholder when none could be resolved. */
  gatewayLabel(): string {
    try {
      return this.gateway().url.origin;
    } catch {
      return "<no gateway>";
    }
  }

  transport(): Transport {
    this.cachedTransport ??= createTransport(this.gateway());
    return this.cachedTransport;
  }

  client<T extends DescService>(service: T, transport: Transport = this.transport()): Client<T> {
    return client(service, transport);
  }

  workspace(): string {
    return this.globals().workspace;
  }

  scope(): WorkspaceSelector {
    return create(WorkspaceSelectorSchema, { selection: { case: "workspace", value: this.workspace() } });
  }

  style(stream: NodeJS.WriteStream = process.stderr): Styler {
    return styler(colourEnabled(stream, !this.globals().color, this.env));
  }

  out(text: string): void {
    process.stdout.write(text);
  }
  err(text: string): void {
    process.stderr.write(text);
  }
  outBytes(data: Uint8Array): void {
    process.stdout.write(data);
  }
  errBytes(data: Uint8Array): void {
    process.stderr.write(data);
  }
  setExitCode(code: number): void {
    this.exitCode = code;
  }

  print<T>(format: OutputFormat, rows: readonly T[], columns: readonly Column<T>[], data: unknown): void {
    this.out(render(format, rows, columns, data));
  }
}
