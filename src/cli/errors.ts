// How both executables end: one line on stderr and a documented exit code, never a stack trace.

import { CommanderError } from "commander";
import { ConfigError } from "../config/load.js";

export const EXIT = {
  ok: 0,
  /** A failure while doing the work (gateway unreachable, sandbox failed, internal error). */
  failure: 1,
  /** Bad input: an invalid flag, setting, field or file. */
  usage: 2,
} as const;

/** Bad command-line input found after parsing (a malformed --env, a missing value). */
export class UsageError extends Error {
  readonly exitCode = EXIT.usage;
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError || err instanceof UsageError) return EXIT.usage;
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return EXIT.failure;
}

/** Runs a CLI main function and turns any error into one line and an exit code. */
export async function runMain(program: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    const code = exitCodeOf(err);
    if (err instanceof CommanderError) {
      // commander has already printed its message (or the help text).
      process.exitCode = code;
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    const prefix = code === EXIT.usage ? "error" : "failed";
    process.stderr.write(`${program}: ${prefix}: ${message.split("\n")[0]}\n`);
    if (process.env.OPENSHELL_DEBUG && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}
