// `openshell doctor`: is the gateway reachable and healthy, what does it run with, and does its
// configured pull path work (pull secrets and the default image's registry)? Prints what to fix.

import { Option, type Command } from "commander";
import { SandboxExtService } from "../../gen/openshell/ext/v1/ext_pb.js";
import { OpenShell, ServiceStatus } from "../../gen/openshell/v1/openshell_pb.js";
import type { CliContext } from "../context.js";
import { CLI_EXIT, describeRpcError } from "../transport.js";
import { VERSION } from "../../version.js";

interface Check {
  readonly ok: boolean;
  readonly warning?: boolean;
  readonly check: string;
  readonly detail: string;
  readonly fix?: string;
}

export function addDoctorCommand(program: Command, ctx: CliContext): void {
  program
    .command("doctor")
    .description("check the gateway, its configuration and its pull path, and say what to fix")
    .addOption(new Option("-o, --output <FORMAT>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (opts: { output: "text" | "json" }) => {
      const checks: Check[] = [{ ok: true, check: "client", detail: `openshell ${VERSION}` }];
      const gateway = ctx.gatewayLabel();
      let exitCode: number = CLI_EXIT.ok;
      try {
        const started = performance.now();
        const health = await ctx.client(OpenShell).health({});
        const ms = Math.round(performance.now() - started);
        const healthy = health.status === ServiceStatus.HEALTHY;
        checks.push({
          ok: healthy,
          check: "gateway",
          detail: `${gateway} answered in ${ms} ms: ${healthy ? "healthy" : ServiceStatus[health.status]}, version ${health.version}`,
          ...(healthy ? {} : { fix: "check the gateway's /readyz and its log" }),
        });
        const info = await ctx.client(SandboxExtService).getGatewayInfo({});
        checks.push({
          ok: true,
          check: "driver",
          detail: `${info.driver}: sandboxes as ${info.sandboxResource} in namespace ${info.namespace}`,
        });
        checks.push({
          ok: true,
          check: "default image",
          detail:
            info.effectiveDefaultImage === info.defaultImage
              ? info.defaultImage
              : `${info.defaultImage} (pulled as ${info.effectiveDefaultImage} through a mirror)`,
        });
        const secrets = info.imagePullSecrets.length ? info.imagePullSecrets.join(", ") : "none configured";
        const errors = info.findings.filter((f) => f.severity === "error");
        checks.push({
          ok: errors.length === 0,
          warning: errors.length === 0 && info.findings.length > 0,
          check: "pull path",
          detail: `pull secrets: ${secrets}; preflight ${info.pullSecretPreflight}${info.registryProbe ? ", registry probe on" : ""}${info.findings.length === 0 ? "; no problems found" : ""}`,
        });
        for (const f of info.findings) {
          checks.push({
            ok: f.severity !== "error",
            warning: f.severity !== "error",
            check: f.reason,
            detail: f.message,
            fix: f.fix,
          });
        }
        if (checks.some((c) => !c.ok)) exitCode = CLI_EXIT.failure;
      } catch (err) {
        const { line, exitCode: code } = describeRpcError(err, gateway);
        checks.push({
          ok: false,
          check: "gateway",
          detail: line,
          fix: "check --gateway / OPENSHELL_GATEWAY, TLS options and the token",
        });
        exitCode = code;
      }
      if (opts.output === "json") {
        ctx.out(`${JSON.stringify({ ok: exitCode === CLI_EXIT.ok, checks }, null, 2)}\n`);
      } else {
        const style = ctx.style(process.stdout);
        for (const c of checks) {
          const mark = c.ok ? (c.warning ? style.yellow("!") : style.green("✓")) : style.red("✗");
          ctx.out(`${mark} ${c.check}: ${c.detail}\n`);
          if (c.fix) ctx.out(`    fix: ${c.fix}\n`);
        }
      }
      ctx.setExitCode(exitCode);
    });
}
