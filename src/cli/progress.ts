// Progress while a sandbox starts: one live line on a terminal, plain lines otherwise (logs, CI, pipes).

import type { PlatformEvent, Sandbox } from "../gen/openshell/v1/openshell_pb.js";
import { SandboxPhase } from "../gen/openshell/v1/openshell_pb.js";
import type { Styler } from "./output.js";

/** Turns a Kubernetes event into a progress step, or undefined when it says nothing new to a user. */
export function stepFromEvent(event: PlatformEvent): { text: string; warning: boolean } | undefined {
  const image = event.metadata.image ?? /image "([^"]+)"/.exec(event.message)?.[1];
  const size = event.metadata.size ? Number(event.metadata.size) : undefined;
  switch (event.reason) {
    case "Scheduled":
      return {
        text: `scheduled${/to (\S+)$/.exec(event.message) ? ` on ${/to (\S+)$/.exec(event.message)![1]}` : ""}`,
        warning: false,
      };
    case "Pulling":
      return { text: `pulling image ${image ?? ""}`.trim(), warning: false };
    case "Pulled":
      return {
        text: `pulled image ${image ?? ""}${size !== undefined && Number.isFinite(size) ? ` (${formatBytes(size)})` : ""}`.replace(
          / +/g,
          " ",
        ),
        warning: false,
      };
    case "Created":
    case "Started":
      return { text: "starting", warning: false };
    default:
      return event.type === "Warning"
        ? { text: `${event.reason}: ${event.message}`, warning: true }
        : undefined;
  }
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function phaseName(phase: SandboxPhase): string {
  return (SandboxPhase[phase] ?? "UNKNOWN").replace(/^SANDBOX_PHASE_/, "");
}

export function stepFromSandbox(sandbox: Sandbox): string {
  return phaseName(sandbox.status?.phase ?? SandboxPhase.UNSPECIFIED).toLowerCase();
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export class Progress {
  private last = "";
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
    private readonly style: Styler,
    private readonly prefix: string,
  ) {
    if (tty) {
      this.timer = setInterval(() => this.draw(), 100);
      this.timer.unref();
    }
  }

  private elapsed(): string {
    return `${Math.round((Date.now() - this.started) / 1000)}s`;
  }

  private draw(): void {
    if (!this.tty || !this.last) return;
    this.frame = (this.frame + 1) % SPINNER.length;
    this.out.write(
      `\r\u001b[2K${this.style.dim(SPINNER[this.frame]!)} ${this.prefix}: ${this.last} ${this.style.dim(`(${this.elapsed()})`)}`,
    );
  }

  private readonly warned = new Set<string>();

  step(text: string, warning = false): void {
    if (text === this.last) return;
    if (warning) {
      // Kubernetes repeats warnings (with a count); each is shown once.
      if (this.warned.has(text)) return;
      this.warned.add(text);
    }
    this.last = text;
    if (this.tty) {
      if (warning) this.out.write(`\r\u001b[2K${this.style.yellow("!")} ${this.prefix}: ${text}\n`);
      this.draw();
    } else {
      this.out.write(`${this.prefix}: ${warning ? "warning: " : ""}${text}\n`);
    }
  }

  finish(text: string, ok: boolean): void {
    if (this.timer) clearInterval(this.timer);
    const mark = ok ? this.style.green("✓") : this.style.red("✗");
    if (this.tty)
      this.out.write(`\r\u001b[2K${mark} ${this.prefix}: ${text} ${this.style.dim(`(${this.elapsed()})`)}\n`);
    else this.out.write(`${this.prefix}: ${text}\n`);
  }
}
