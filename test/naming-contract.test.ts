// The naming contract (test/support/naming-contract.ts) over every interpreter and namer:
// the default interpreter with /$/inet, io.l5d.fs and io.l5d.dnssrv, and the namerd
// interpreter in resolve and bind modes, polling and watching.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { InterpreterConfig, NamerConfig } from '../src/config/types.ts';
import { createDefaultInterpreter } from '../src/interpreter/default.ts';
import type { Interpreter } from '../src/interpreter/interpreter.ts';
import { createNamerdInterpreter } from '../src/interpreter/namerd.ts';
import { silentLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import { DnsServer } from './support/dns-server.ts';
import { deadline } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';
import { namingContract, type Subject } from './support/naming-contract.ts';

function defaultSubject(t: TestContext, dtab: string, namers: NamerConfig[], dst: string): Pick<Subject, 'interp' | 'another' | 'dst'> {
  const make = (): Interpreter => {
    const i = createDefaultInterpreter({ dtab, namers, log: silentLogger(), registry: new Registry() });
    t.after(() => i.close());
    return i;
  };
  return { interp: make(), another: make, dst };
}

/** Waits until `interp` delivers a failure for `dst` (namerd interpreters deliver them). */
function failedSeen(interp: Interpreter, dst: string): Promise<void> {
  return deadline(8000, `${dst} failed`, new Promise<void>((resolve) => {
    const w = interp.watch(dst, (r) => {
      if (r.kind !== 'failed') return;
      w.close();
      resolve();
    });
  }));
}

namingContract('default interpreter, /$/inet', async (t) => defaultSubject(t, '/svc => /$/inet/127.0.0.1/1001;', [], '/svc/web'), { change: false, fail: false });

namingContract('default interpreter, io.l5d.fs', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'l5d-contract-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'marker'), '127.0.0.1 1\n');
  const s = defaultSubject(t, '/svc => /#/io.l5d.fs;', [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }], '/svc/web');
  let mark = 1;
  return {
    ...s,
    set: (ports) => writeFileSync(join(root, 'web'), ports.map((p) => `127.0.0.1 ${p}\n`).join('')),
    async break() {
      writeFileSync(join(root, 'web'), 'not an address\n');
      // A second file changed after the bad one: once its change is seen, so was the bad file's.
      const want = ++mark;
      writeFileSync(join(root, 'marker'), `127.0.0.1 ${want}\n`);
      await deadline(8000, 'the marker file', new Promise<void>((resolve) => {
        const w = s.interp.watch('/svc/marker', (r) => {
          if (r.kind === 'bound' && r.endpoints[0]?.port === want) (w.close(), resolve());
        });
      }));
    },
  };
}, { change: true, fail: true });

namingContract('default interpreter, io.l5d.dnssrv', async (t) => {
  const dns = await DnsServer.start();
  t.after(() => dns.close());
  const name = '_web._tcp.example.test';
  dns.setA('host-a', ['127.0.0.1']);
  const s = defaultSubject(t, '/svc => /#/io.l5d.dnssrv;', [
    { kind: 'io.l5d.dnssrv', prefix: '/io.l5d.dnssrv', refreshIntervalSeconds: 1, dnsHosts: [{ host: '127.0.0.1', port: dns.port }] },
  ], `/svc/${name}`);
  return {
    ...s,
    set(ports) {
      // One target per record: dns2 would compress a repeated target, which c-ares rejects.
      for (const port of ports) dns.setA(`host-${port}`, ['127.0.0.1']);
      dns.setSrv(name, ports.map((port) => ({ priority: 1, weight: 1, port, target: `host-${port}` })));
    },
    async break() {
      dns.setSrv(name, [{ priority: 1, weight: 1, port: 0, target: 'host-a' }]); // port 0: a bad answer
      // The second query after the break means the first (broken) answer was processed.
      await deadline(8000, 'two SRV queries', dns.queries(name, 2));
    },
  };
}, { change: true, fail: true });

type NamerdConfig = Extract<InterpreterConfig, { kind: 'io.l5d.namerd.http' }>;
for (const mode of ['resolve', 'bind'] as const) {
  for (const watch of [false, true]) {
    namingContract(`namerd interpreter, mode ${mode}, ${watch ? 'watch' : 'poll'}`, async (t) => {
      const nd = await NamerdDouble.start();
      t.after(() => nd.close());
      const config: NamerdConfig = { kind: 'io.l5d.namerd.http', baseUrl: nd.baseUrl, namespace: 'default', periodSecs: 1, watch, requestTimeoutMs: 1000, mode };
      const make = (): Interpreter => {
        const i = createNamerdInterpreter({ config, routerLabel: 'rt', dtab: '', registry: new Registry(), log: silentLogger(), periodMs: 50, backoffMinMs: 20, random: () => 0.5 });
        t.after(() => i.close());
        return i;
      };
      const dst = '/svc/web';
      const id = '/#/io.l5d.fs/web';
      let broken = true; // bind: the tree is (re)set by the first set()
      const interp = make();
      return {
        interp, another: make, dst,
        set(ports) {
          const answer = { type: 'bound' as const, addrs: ports.map((port) => ({ ip: '127.0.0.1', port })) };
          if (mode === 'resolve') return nd.set('default', dst, answer);
          nd.setAddr(id, answer);
          if (broken) nd.setTree('default', dst, { type: 'leaf', id });
          broken = false;
        },
        async break() {
          const seen = failedSeen(interp, dst);
          if (mode === 'resolve') nd.set('default', dst, { type: 'status', status: 500 });
          else nd.setTree('default', dst, { type: 'status', status: 500 });
          broken = true;
          await seen;
        },
      };
    }, { change: true, fail: true });
  }
}
