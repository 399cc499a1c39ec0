// The decoded, defaulted configuration. Keys and defaults follow linkerd-tcp 0.1.1
// (reference §8.1); additions are marked "new". Produced only by config/schema.ts.

export interface Config {
  readonly workers: number | undefined; // new: processes sharing each listener; undefined = LINKERD_TCP_WORKERS or the cores
  readonly bufferSizeBytes: number; // default 16384: socket read buffer (highWaterMark)
  /** new: which engine moves the bytes (src/engine/select.ts); default auto = native where it can. */
  readonly engine?: 'auto' | 'native' | 'node';
  /**
   * new: one process whose native I/O threads (`workers` of them) serve plain TCP servers,
   * instead of a process per worker (src/engine/thread-server.ts); default false.
   */
  readonly threads?: boolean;
  /** new: re-read and apply the config file when it changes (as SIGHUP and POST /reload do); default false. */
  readonly watchConfig?: boolean;
  readonly admin: AdminConfig;
  readonly namers: readonly NamerConfig[]; // new (linkerd 1 style), used by `kind: default`
  readonly routers: readonly RouterConfig[];
}

export interface AdminConfig {
  readonly ip: string; // default 127.0.0.1
  readonly port: number; // default 9989; 0 = any free port
  readonly metricsIntervalSecs: number; // default 60
  readonly graceSecs: number; // default 10
  /** Host names (or IP literals, optionally `:port`) the admin answers to besides its own addresses and localhost. */
  readonly allowedHosts?: readonly string[]; // default []
  /** A file holding the bearer token admin mutations need (or LINKERD_TCP_ADMIN_TOKEN). */
  readonly tokenFile?: string;
}

export type NamerConfig =
  | { readonly kind: 'io.l5d.fs'; readonly prefix: string; readonly rootDir: string }
  | {
      readonly kind: 'io.l5d.dnssrv';
      readonly prefix: string;
      readonly refreshIntervalSeconds: number;
      readonly dnsHosts: readonly { readonly host: string; readonly port: number }[]; // empty = system resolvers
    };

export interface RouterConfig {
  readonly label: string;
  readonly interpreter: InterpreterConfig;
  readonly dtab: string; // new: linkerd 1 router dtab (text, already validated); '' when absent
  readonly servers: readonly ServerConfig[];
  readonly client: ClientConfig;
  /** new: destinations created from client-chosen SNI names kept at once (LRU); default 1000. */
  readonly maxSniDestinations?: number;
}

export type InterpreterConfig =
  | { readonly kind: 'default' }
  | {
      readonly kind: 'io.l5d.namerd.http';
      readonly baseUrl: string;
      readonly namespace: string;
      readonly periodSecs: number;
      readonly watch: boolean; // new: stream `watch=true` instead of polling
      readonly requestTimeoutMs: number; // new: default 10000
      /** new: `resolve` (default, linkerd-tcp's /api/1/resolve) or `bind` (linkerd's /api/1/bind + /api/1/addr: weighted unions kept). */
      readonly mode: 'resolve' | 'bind';
    };

export interface ServerConfig {
  readonly ip: string; // default 127.0.0.1
  readonly port: number; // 0 = any free port
  readonly dstName: string;
  readonly connectTimeoutMs: number | undefined; // accept → backend connected
  readonly connectionLifetimeSecs: number | undefined;
  readonly idleTimeoutMs: number | undefined; // new: close when no byte moved either way for this long
  readonly maxConcurrency: number; // default 100000
  readonly tls: ServerTlsConfig | undefined;
  /** new: bounds reading a PROXY header and (passthrough) a ClientHello; default 10000. */
  readonly handshakeTimeoutMs?: number;
  /** new: where a `{sni}` server sends connections without a usable name; undefined = close them. */
  readonly defaultDstName?: string | undefined;
  /** new: PROXY protocol headers expected from these proxies before anything else. */
  readonly proxyProtocol?: ProxyReceiveConfig | undefined;
}

/** new: a server's PROXY protocol receive settings. */
export interface ProxyReceiveConfig {
  readonly accept: 'v1' | 'v2' | 'any';
  readonly trustedCidrs: readonly string[]; // `a.b.c.d/n`, `v6/n`
}

export interface TlsIdentity {
  readonly privateKey: string; // file path
  readonly certs: readonly string[]; // file paths: leaf then chain
}

export interface ServerTlsConfig {
  readonly alpnProtocols: readonly string[] | undefined;
  readonly defaultIdentity: TlsIdentity | undefined;
  /** By SNI name: exact (case-insensitive) or a `*.` wildcard for one label. */
  readonly identities: Readonly<Record<string, TlsIdentity>>;
  readonly handshakeTimeoutMs: number; // new, default 10000 (and never beyond the server's connectTimeoutMs)
  readonly clientAuth: ClientAuthConfig | undefined; // new: mTLS
}

/** new: verify client certificates against these roots. */
export interface ClientAuthConfig {
  readonly trustCerts: readonly string[];
  readonly required: boolean; // default true; false lets clients without a certificate in
}

export interface ClientTlsConfig {
  readonly dnsName: string;
  /** Added to the system roots. linkerd-tcp: these were the only roots. */
  readonly trustCerts: readonly string[] | undefined;
  readonly clientIdentity: TlsIdentity | undefined; // new: a client certificate for backends that ask
}

export interface FailFastConfig {
  readonly maxConsecutiveFailures: number; // default 5
  readonly failurePenaltySecs: number; // default 60
}

/** Settings for connections to one destination (linkerd-tcp's ConnectorConfig). */
export interface ConnectorConfig {
  readonly connectTimeoutMs: number | undefined; // per connect attempt
  readonly connectAttempts: number; // new, default 3: attempts per client connection, each on another endpoint when possible
  readonly minConnections: number; // default 0
  readonly maxWaiters: number; // default 1000000
  readonly failFast: FailFastConfig | undefined;
  readonly tls: ClientTlsConfig | undefined;
  /** new: a PROXY protocol header written to the backend before the first byte. */
  readonly proxyProtocol?: 'v1' | 'v2' | undefined;
  readonly healthCheck: HealthCheckConfig | undefined; // new: active checks of each endpoint (src/health/)
}

/** new: an active health check, run against every endpoint of a destination. */
export type HealthCheckConfig =
  | ({ readonly kind: 'connect' } & HealthCheckTiming)
  /** `send` (may be empty) is written after connecting; the answer must contain `expect`. */
  | ({ readonly kind: 'send-expect'; readonly send: string; readonly expect: string } & HealthCheckTiming);

export interface HealthCheckTiming {
  readonly intervalMs: number; // default 5000: start to start, spread with jitter
  readonly timeoutMs: number; // default 2000, at most intervalMs
  readonly unhealthyThreshold: number; // default 3 consecutive failures → no new connections
  readonly healthyThreshold: number; // default 2 consecutive passes → back in rotation
}

/** A ConnectorConfig as written: only the keys present (per-prefix configs layer over defaults). */
export type PartialConnectorConfig = { readonly [K in keyof ConnectorConfig]?: ConnectorConfig[K] };

export type ClientConfig =
  | ({ readonly kind: 'io.l5d.global' } & PartialConnectorConfig)
  | {
      readonly kind: 'io.l5d.static';
      readonly configs: readonly ({ readonly prefix: string } & PartialConnectorConfig)[];
    };

export const DEFAULT_CONNECTOR: ConnectorConfig = {
  connectTimeoutMs: undefined,
  connectAttempts: 3,
  minConnections: 0,
  maxWaiters: 1_000_000,
  failFast: undefined,
  tls: undefined,
  healthCheck: undefined,
};
