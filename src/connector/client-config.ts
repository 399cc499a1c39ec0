// Per-destination client settings: io.l5d.global applies one config to every destination;
// io.l5d.static layers every config whose prefix matches the destination, in order, over
// the defaults (later configs win key by key).
//
// linkerd-tcp: matched prefixes backwards (only exact names matched; longer ones panicked)
// and copied only `tls` and `connectTimeoutMs`. Here a prefix matches on path-segment
// boundaries and every key it sets is honoured.
import { type ClientConfig, type ConnectorConfig, DEFAULT_CONNECTOR, type PartialConnectorConfig } from '../config/types.ts';

/** True when `dst` equals `prefix` or continues it at a `/` boundary. */
export function prefixMatches(prefix: string, dst: string): boolean {
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return p === '' || dst === p || dst.startsWith(p + '/');
}

function layer(base: ConnectorConfig, over: PartialConnectorConfig): ConnectorConfig {
  return {
    connectTimeoutMs: over.connectTimeoutMs ?? base.connectTimeoutMs,
    connectAttempts: over.connectAttempts ?? base.connectAttempts,
    minConnections: over.minConnections ?? base.minConnections,
    maxWaiters: over.maxWaiters ?? base.maxWaiters,
    failFast: over.failFast ?? base.failFast,
    tls: over.tls ?? base.tls,
    healthCheck: over.healthCheck ?? base.healthCheck,
    ...(over.proxyProtocol ?? base.proxyProtocol ? { proxyProtocol: over.proxyProtocol ?? base.proxyProtocol } : {}),
  };
}

/** The effective connector config for destination `dst`. */
export function connectorConfigFor(client: ClientConfig, dst: string): ConnectorConfig {
  switch (client.kind) {
    case 'io.l5d.global':
      return layer(DEFAULT_CONNECTOR, client);
    case 'io.l5d.static': {
      // Shorter (less specific) prefixes first, so the longest match has the last word;
      // equal lengths keep file order.
      const matches = client.configs
        .map((c, i) => ({ c, i }))
        .filter(({ c }) => prefixMatches(c.prefix, dst))
        .sort((a, b) => a.c.prefix.length - b.c.prefix.length || a.i - b.i);
      return matches.reduce((acc, { c }) => layer(acc, c), DEFAULT_CONNECTOR);
    }
  }
}
