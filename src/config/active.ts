// Keys that parse and validate but whose behaviour has not landed yet. Security-relevant
// ones (TLS) refuse to start rather than silently proxy plaintext; the rest are warnings.
import type { Config } from './types.ts';

export interface Inactive {
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

export function inactiveKeys(config: Config): Inactive {
  const errors: string[] = [];
  const warnings: string[] = [];
  config.routers.forEach((r, i) => {
    r.servers.forEach((s, j) => {
      if (s.tls) errors.push(`routers[${i}].servers[${j}].tls: TLS termination is not yet active in this version; remove the key to proxy plain TCP`);
    });
    const configs = r.client.kind === 'io.l5d.global' ? [r.client] : r.client.configs;
    configs.forEach((c, j) => {
      const at = r.client.kind === 'io.l5d.global' ? `routers[${i}].client` : `routers[${i}].client.configs[${j}]`;
      if (c.tls) errors.push(`${at}.tls: TLS origination is not yet active in this version; remove the key to connect in plain TCP`);
    });
  });
  return { errors, warnings };
}
