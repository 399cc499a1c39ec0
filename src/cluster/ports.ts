// Before any worker forks, the primary claims every server's port once, alone: a bind
// without SO_REUSEPORT fails with EADDRINUSE when anything else holds the port (another
// linkerd-tcp included, whose workers use SO_REUSEPORT and would otherwise silently share
// it). `port: 0` gets a concrete free port here, so every worker binds the same one.
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import type { Config } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import { addrKey } from '../naming/resolution.ts';

/** A port bound alone by the primary, kept bound until released. */
interface Held {
  readonly port: number;
  release(): Promise<void>;
}

/** Binds `ip:port` alone (no SO_REUSEPORT) and keeps it bound: the port, checked free (a concrete one for 0). */
async function hold(ip: string, port: number, rt: string): Promise<Held> {
  const probe = createServer();
  probe.listen({ host: ip, port, exclusive: true }); // no reusePort: only a free port binds
  try {
    await once(probe, 'listening');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(ip, port)} (router ${rt}): ${code}`, { cause: e });
  }
  return { port: (probe.address() as AddressInfo).port, release: () => new Promise<void>((res) => probe.close(() => res())) };
}

/**
 * Claims every `{ip, port, rt}` at once: each stays bound until all are, then all are let go,
 * so two `port: 0` servers never get the same port (the kernel may hand a port just released
 * out again). Rejects, releasing what it held, like the first listen that fails.
 */
export async function claimAll(wanted: readonly { readonly ip: string; readonly port: number; readonly rt: string }[]): Promise<number[]> {
  const held: Held[] = [];
  try {
    for (const w of wanted) held.push(await hold(w.ip, w.port, w.rt));
    return held.map((h) => h.port);
  } finally {
    await Promise.all(held.map((h) => h.release()));
  }
}

/** The config with every server's port checked free and pinned; rejects like a worker's listen would. */
export async function claimPorts(config: Config): Promise<Config> {
  const ports = await claimAll(config.routers.flatMap((r) => r.servers.map((s) => ({ ip: s.ip, port: s.port, rt: r.label }))));
  let n = 0;
  return { ...config, routers: config.routers.map((r) => ({ ...r, servers: r.servers.map((s) => ({ ...s, port: ports[n++]! })) })) };
}
