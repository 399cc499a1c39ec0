// Loads the native data plane addon (native/*.c, built by node-gyp during `npm ci`) and
// types its API. Never throws: an addon that is missing (no compiler, not Linux) or fails
// to load is `unavailable` with the reason, and the node engine carries on.
// LINKERD_TCP_NATIVE_ADDON points at another build (CI's sanitizer build).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's functions (native/napi.c). Ids are numbers; errors come back as errno values. */
export interface NativeBinding {
  /** `onBatch(count)`: `count` outcome records (native/engine.h), new connections included, are in `records`. */
  init(onBatch: (count: number) => void): { records: Float64Array };
  listen(host: string, port: number, backlog: number, reusePort: boolean, connectTimeoutMs: number, idleMs: number, lifetimeMs: number): number;
  /**
   * Checks `host:port` free (a bind without SO_REUSEPORT; 0 gets a concrete port) and holds it with
   * that same socket, SO_REUSEPORT set and never listening, so workers bind beside it and nothing
   * else can take it: [hold id, port]. Throws with the errno (EADDRINUSE, EINVAL…).
   */
  holdPort(host: string, port: number): [number, number];
  releasePort(holdId: number): void;
  listenerPort(listenerId: number): number | undefined;
  /**
   * Closes the listener after accepting what the kernel had queued on it (served, not reset):
   * how many, whose accepts arrive in this loop turn's batch.
   */
  listenerClose(listenerId: number): number;
  /** Bytes from / to the clients of the listener's live connections. */
  listenerBytes(listenerId: number): [number, number];
  /**
   * 0, or an errno: ENOENT (no such connection), EBUSY (not waiting for a connect), EINVAL (not an IP
   * address, or an unknown TLS client id). `tlsClient`: a tlsClient id, the attempt then includes the
   * backend's TLS handshake and verification.
   */
  connect(connId: number, host: string, port: number, timeoutMs: number, header?: Uint8Array, tlsClient?: number): number;
  /** [bytes from client, bytes to client], or undefined when the engine already closed it (a record follows). */
  close(connId: number): [number, number] | undefined;
  peer(connId: number): string | undefined;
  /** 0 or an errno; an OUT_PEEKED record follows once `minBytes` (default 1) are readable, or at EOF. */
  peek(connId: number, maxBytes: number, minBytes?: number): number;
  /** Consumes the first `bytes` the client sent (a header parsed from a peek): 0 or an errno. */
  drop(connId: number, bytes: number): number;
  peeked(connId: number): Buffer | undefined;
  /** While it waits for a destination: a client that leaves closes it (a client_error record). 0 or an errno. */
  watchLeave(connId: number): number;
  /** [live connections, pipes in use, pipes pooled, pipes created, pipes closed, heap trims (native/heap.c),
   * pipe bytes (capacity of the pipes open), buffer bytes (copy buffers held and pooled, the scratch), budget bytes,
   * directions refused a pipe (kept on the buffered pump)] */
  stats(): [number, number, number, number, number, number, number, number, number, number];
  /** The byte budget for pipes and copy buffers (native/engine.h). */
  setBudget(bytes: number): void;
  /** `draws` picks of native/pick.c (one random stream seeded `seed`): an index each, -1 for none. */
  pick(weights: Float64Array, loads: Float64Array, exclude: number, empty: number, seed: number, draws: number): Int32Array;
  /**
   * The engine clock in ms (uv_hrtime: CLOCK_MONOTONIC), the clock of every record's time. Only
   * differences of its readings mean anything: it is not performance.now() and has no known offset to it.
   */
  hrNow(): number;
  /** Undefined when the running node exports the OpenSSL TLS needs (3.x), else why not (native/tls-ctx.c). */
  tlsAvailable(): string | undefined;
  /** A termination snapshot (native/tls-ctx.c); throws with OpenSSL's reason on bad material. */
  tlsServer(o: NativeTlsServerOptions): number;
  /** An origination snapshot; throws with OpenSSL's reason on bad material. */
  tlsClient(o: NativeTlsClientOptions): number;
  /** Drops JavaScript's reference: listeners and connections that use it keep theirs. */
  tlsServerRelease(id: number): void;
  tlsClientRelease(id: number): void;
  /** New handshakes on the listener start from this snapshot: 0 or an errno. */
  listenerTls(listenerId: number, tlsServerId: number): number;
  /** The client's handshake begins: 0 or an errno; an OUT_TLS_DONE or OUT_TLS_FAILED record follows. */
  tlsStart(connId: number): number;
  /** [name the client asked for, ALPN protocol agreed], or undefined for an unknown connection. */
  tlsInfo(connId: number): [string | undefined, string | undefined] | undefined;
  /** 48 bytes (name, HMAC key, AES key: Node's setTicketKeys layout); the previous set still decrypts. Never log them. */
  tlsTicketKeys(keys: Uint8Array): void;
  /** The index (in `identities`) of the identity `name` selects, or -1 (the shared vector test). */
  tlsIdentityIndex(tlsServerId: number, name: string): number;
  /**
   * Native I/O threads (native/napi-io.c) listening on host:port (SO_REUSEPORT each; 0: the
   * first one's port). `settings`: [threads, waitMs (the server's connect deadline), idleMs,
   * lifetimeMs, maxWaiters, maxConns, wantPeer (1: accept records carry the client's address),
   * budget bytes] (0: none; maxWaiters -1: no limit). `onRecords(count, ended)`: `count` records are in `records`; `ended`
   * once, after ioStop, when every thread has ended and been joined (the last records with it).
   * Throws with the errno (EADDRINUSE…).
   */
  ioStart(host: string, port: number, settings: readonly number[], onRecords: (count: number, ended: boolean) => void): { id: number; port: number; records: Float64Array };
  /**
   * The snapshot new picks use: IP literals, ports, weights, endpoint ids (< 1024), the empty
   * share, the per-attempt timeout (ms, 0: none), retries, maxWaiters (-1: no limit),
   * maxFailures (failFast.maxConsecutiveFailures: the threads leave out an endpoint that many
   * failures in a row, 0: never) and, per endpoint, whether the threads' failure count starts
   * again. Ignored once the group has ended.
   */
  ioPublish(id: number, hosts: string[], ports: number[], weights: number[], ids: number[], empty: number, connectTimeoutMs: number, retries: number, maxWaiters: number, maxFailures: number, resets: boolean[]): void;
  /** Connects pending plus open on an endpoint id, every thread together (undefined once ended). */
  ioLoad(id: number, endpointId: number): number | undefined;
  /** The threads stop accepting (what is queued is served); `ended` follows once their connections have closed. */
  ioStop(id: number): void;
  /** Every open connection of the threads is closed (ESHUTDOWN). */
  ioCut(id: number): void;
  /**
   * [open connections, waiting (for a first snapshot, or connecting), refused for maxWaiters,
   * times accepting was held for a full ring, bytes from clients so far, bytes to clients so
   * far (live connections included)], or undefined once ended.
   */
  ioStats(id: number): [number, number, number, number, number, number] | undefined;
}

export interface NativeTlsPolicy {
  readonly ciphers12: string;
  readonly suites13: string;
  readonly groups: string;
}

export interface NativeTlsServerOptions extends NativeTlsPolicy {
  /** The default identity (PEM), when there is one. */
  readonly cert?: Uint8Array;
  readonly key?: Uint8Array;
  /** Names normalised (lowercase, no trailing dot), `*.` for a wildcard. */
  readonly identities: readonly { readonly name: string; readonly cert: Uint8Array; readonly key: Uint8Array }[];
  /** ALPN protocols in wire format. */
  readonly alpn?: Uint8Array;
  /** 0 none, 1 optional, 2 required. */
  readonly clientAuth: 0 | 1 | 2;
  readonly clientCa?: Uint8Array;
  /** Session-ID context (1-32 bytes): a hash of the trust material. */
  readonly sidCtx: Uint8Array;
  readonly sessionTimeoutS: number;
  readonly handshakeMs: number;
}

export interface NativeTlsClientOptions extends NativeTlsPolicy {
  readonly name: string;
  readonly nameIsIp: 0 | 1;
  /** PEM roots: Node's default set plus trustCerts. */
  readonly trust: Uint8Array;
  readonly cert?: Uint8Array;
  readonly key?: Uint8Array;
}

export type NativeLoad =
  | { readonly kind: 'loaded'; readonly binding: NativeBinding; readonly path: string }
  | { readonly kind: 'unavailable'; readonly reason: string };

const ADDON = fileURLToPath(new URL('../../build/Release/linkerd_tcp_engine.node', import.meta.url));

let cached: NativeLoad | undefined;

/** The addon, loaded once per process. */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): NativeLoad {
  if (process.platform !== 'linux') return { kind: 'unavailable', reason: `the native engine is Linux-only (this is ${process.platform})` };
  const path = process.env['LINKERD_TCP_NATIVE_ADDON'] || ADDON;
  if (!existsSync(path)) return { kind: 'unavailable', reason: `the native addon was not built (${path} is missing: no C compiler during npm ci?)` };
  try {
    const binding = createRequire(import.meta.url)(path) as NativeBinding;
    return { kind: 'loaded', binding, path };
  } catch (e) {
    return { kind: 'unavailable', reason: `the native addon failed to load: ${(e as Error).message}` };
  }
}
