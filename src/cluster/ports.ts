// Before any worker forks, the primary claims every server's port once, alone: a bind
// without SO_REUSEPORT fails with EADDRINUSE when anything else holds the port (another
// linkerd-tcp included, whose workers use SO_REUSEPORT and would otherwise silently share
// it). `port: 0` gets a concrete free port here, so every worker binds the same one.
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import type { Config } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import { addrKey } from '../naming/resolution.ts';

/** Binds `ip:port` alone (no SO_REUSEPORT) and lets go: the port, checked free (a concrete one for 0). */
export async function claim(ip: string, port: number, rt: string): Promise<number> {
  const probe = createServer();
  probe.listen({ host: ip, port, exclusive: true }); // no reusePort: only a free port binds
  try {
    await once(probe, 'listening');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(ip, port)} (router ${rt}): ${code}`, { cause: e });
  }
  const bound = (probe.address() as AddressInfo).port;
  await new Promise<void>((res) => probe.close(() => res()));
  return bound;
}

/** The config with every server's port checked free and pinned; rejects like a worker's listen would. */
export async function claimPorts(config: Config): Promise<Config> {
  const routers = [];
  for (const r of config.routers) {
    const servers = [];
    for (const s of r.servers) servers.push({ ...s, port: await claim(s.ip, s.port, r.label) });
    routers.push({ ...r, servers });
  }
  return { ...config, routers };
}
