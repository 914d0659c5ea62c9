// Checks that only matter when the gateway serves: settings that must agree with each other and files
// that must be readable. Rendering and check-config of the driver part do not need them.

import { accessSync, constants } from "node:fs";
import { ConfigError, describeSource, type LoadedConfig } from "./load.js";
import { SETTINGS, type SettingKey } from "./settings.js";

function origin(loaded: LoadedConfig, key: SettingKey): string {
  return describeSource(loaded.sources[key]);
}

/** Returns every problem as one line each (empty when the configuration can serve). */
export function serveProblems(loaded: LoadedConfig, canRead = defaultCanRead): string[] {
  const { config } = loaded;
  const problems: string[] = [];

  const ports = (["port", "healthPort", "metricsPort"] as const).filter((k) => config[k] !== 0);
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [a, b] = [ports[i]!, ports[j]!];
      if (config[a] === config[b]) {
        problems.push(
          `${SETTINGS[a].title} and ${SETTINGS[b].title} are both ${config[a]} (${origin(loaded, a)}, ${origin(loaded, b)}): give each listener its own port`,
        );
      }
    }
  }

  if (!config.disableTls) {
    for (const key of ["tlsCert", "tlsKey"] as const) {
      if (config[key] === "") {
        problems.push(
          `${SETTINGS[key].title} is not set: pass --${SETTINGS[key].flag} FILE (or ${SETTINGS[key].env}), or --disable-tls for development`,
        );
      }
    }
  } else if (config.tlsClientCa !== "") {
    problems.push(
      `${SETTINGS.tlsClientCa.title} is set (${origin(loaded, "tlsClientCa")}) but TLS is disabled (${origin(loaded, "disableTls")}): client certificates need TLS; remove one of them`,
    );
  }

  const hasAuth = config.authTokenFile !== "" || (config.tlsClientCa !== "" && !config.disableTls);
  if (!hasAuth && !config.allowUnauthenticated) {
    problems.push(
      "no client authentication is configured: pass --tls-client-ca FILE (mTLS) or --auth-token-file FILE, or --allow-unauthenticated for development",
    );
  }

  for (const key of ["tlsCert", "tlsKey", "tlsClientCa", "authTokenFile", "kubeconfig"] as const) {
    if (config[key] === "" || (config.disableTls && key !== "authTokenFile" && key !== "kubeconfig"))
      continue;
    const reason = canRead(config[key]);
    if (reason) {
      problems.push(
        `${SETTINGS[key].title} ${config[key]} (${origin(loaded, key)}) cannot be read: ${reason}`,
      );
    }
  }
  return problems;
}

function defaultCanRead(path: string): string | undefined {
  try {
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(code);
  }
}

/** Throws the first serve problem as a ConfigError. */
export function assertCanServe(loaded: LoadedConfig): void {
  const [first] = serveProblems(loaded);
  if (first) throw new ConfigError(first);
}
