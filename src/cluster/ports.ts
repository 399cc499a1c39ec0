// Before any worker forks, the primary claims every server's port once, alone: a bind
// without SO_REUSEPORT fails with EADDRINUSE when anything else holds the port (another
// linkerd-tcp included, whose workers use SO_REUSEPORT and would otherwise silently share
// it). `port: 0` gets a concrete free port here, so every worker binds the same one.
//
// Then the primary keeps holding it (native/port-hold.c: the socket that checked sets
// SO_REUSEPORT and never listens), so the workers bind beside the hold and nothing else,
// not even an outgoing connection's ephemeral port, can take the port while they start,
// or while every worker is being replaced. Without the native addon the check is a Node
// listen, let go at once: the workers then race anything else for the port, as before.
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import type { Config } from '../config/types.ts';
import { loadNative, type NativeBinding } from '../engine/native-binding.ts';
import { LinkerdTcpError } from '../errors.ts';
import { addrKey } from '../naming/resolution.ts';

export interface Wanted { readonly ip: string; readonly port: number; readonly rt: string }

/** A port checked free and bound: `lasting` ones stay held until released; the others are let go after the claim. */
interface Held {
  readonly port: number;
  readonly lasting: boolean;
  release(): Promise<void>;
}

const listenError = (w: Wanted, e: unknown): LinkerdTcpError => {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(w.ip, w.port)} (router ${w.rt}): ${code}`, { cause: e });
};

/** Binds `ip:port` alone (no SO_REUSEPORT), checking it free (a concrete port for 0). */
async function hold(w: Wanted, native: NativeBinding | undefined): Promise<Held> {
  if (native) {
    let id: number, port: number;
    try {
      [id, port] = native.holdPort(w.ip, w.port);
    } catch (e) {
      throw listenError(w, e);
    }
    return { port, lasting: true, release: async () => native.releasePort(id) };
  }
  const probe = createServer();
  probe.listen({ host: w.ip, port: w.port, exclusive: true }); // no reusePort: only a free port binds
  try {
    await once(probe, 'listening');
  } catch (e) {
    throw listenError(w, e);
  }
  return { port: (probe.address() as AddressInfo).port, lasting: false, release: () => new Promise<void>((res) => probe.close(() => res())) };
}

const nativeOrNone = (): NativeBinding | undefined => {
  const load = loadNative();
  return load.kind === 'loaded' ? load.binding : undefined;
};

/**
 * The primary's ports: each claimed address is held (where the addon allows) until the
 * config no longer has it. One book per primary.
 */
export class PortBook {
  private readonly held = new Map<string, Held>();
  private readonly native: NativeBinding | undefined;

  constructor(native: NativeBinding | undefined = nativeOrNone()) {
    this.native = native;
  }

  /**
   * Claims every wanted address at once: each stays bound until all are, so two `port: 0`
   * servers never get the same port (the kernel may hand a port just released out again).
   * Returns the concrete ports in order; rejects like the first listen that fails, letting
   * go of what this call took.
   */
  async claim(wanted: readonly Wanted[]): Promise<number[]> {
    const taken: [string, Held][] = [];
    try {
      for (const w of wanted) {
        const h = await hold(w, this.native);
        taken.push([addrKey(w.ip, h.port), h]);
      }
    } catch (e) {
      await Promise.all(taken.map(([, h]) => h.release()));
      throw e;
    }
    for (const [key, h] of taken) {
      if (h.lasting) this.held.set(key, h);
      else await h.release();
    }
    return taken.map(([, h]) => h.port);
  }

  /** Lets go of every held address that `config` has no server on. */
  async keepOnly(config: Config): Promise<void> {
    const wanted = new Set(config.routers.flatMap((r) => r.servers.map((s) => addrKey(s.ip, s.port))));
    for (const [key, h] of [...this.held]) {
      if (wanted.has(key)) continue;
      this.held.delete(key);
      await h.release();
    }
  }

  /** The addresses held now (for tests and state). */
  holding(): string[] {
    return [...this.held.keys()];
  }

  /** `config` with every server's port checked free, held and pinned; rejects like a worker's listen would. */
  async pin(config: Config): Promise<Config> {
    const ports = await this.claim(config.routers.flatMap((r) => r.servers.map((s) => ({ ip: s.ip, port: s.port, rt: r.label }))));
    let n = 0;
    return { ...config, routers: config.routers.map((r) => ({ ...r, servers: r.servers.map((s) => ({ ...s, port: ports[n++]! })) })) };
  }
}
