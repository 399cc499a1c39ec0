import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { it } from 'node:test';
import type { Config } from '../config/types.ts';
import { claimAll, claimPorts } from './ports.ts';

/** Just the keys claimPorts reads. */
const configWith = (servers: { ip: string; port: number }[]): Config =>
  ({ routers: [{ label: 'r', servers }] }) as unknown as Config;

it('port: 0 servers each get a port of their own (the kernel may hand a just-released port out again)', async () => {
  const n = 300;
  const out = await claimPorts(configWith(Array.from({ length: n }, () => ({ ip: '127.0.0.1', port: 0 }))));
  const ports = out.routers[0]!.servers.map((s) => s.port);
  assert.ok(ports.every((p) => p > 0));
  assert.equal(new Set(ports).size, n);
});

it('every claimed port is let go again, also when a later one is taken (the error names the address and router)', async () => {
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const busy = (taken.address() as AddressInfo).port;
  try {
    let first = 0;
    await assert.rejects(async () => {
      const [p] = await claimAll([{ ip: '127.0.0.1', port: 0, rt: 'a' }]);
      first = p!;
      await claimAll([{ ip: '127.0.0.1', port: first, rt: 'a' }, { ip: '127.0.0.1', port: busy, rt: 'b' }]);
    }, new RegExp(`127\\.0\\.0\\.1:${busy} \\(router b\\): EADDRINUSE`));
    assert.deepEqual(await claimAll([{ ip: '127.0.0.1', port: first, rt: 'a' }]), [first], 'released after the failure');
  } finally {
    taken.close();
  }
});
