// Loggers for gateways under test: one that keeps every line (for assertions on what was logged, and
// secret sweeps), and one that drops everything below a warning.

import { Writable } from "node:stream";
import type { Logger } from "pino";
import { createLogger } from "../../src/gateway/observability.js";

/** A logger at `level` whose every written chunk goes to `sink` (pino writes one JSON line per chunk). */
export function capturingLogger(level: string, sink: (chunk: string) => void): Logger {
  return createLogger(
    level,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        sink(chunk.toString());
        cb();
      },
    }),
  );
}
