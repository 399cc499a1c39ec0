import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/load.ts';
import { effectiveConfig, isEmpty, planLines, planReload } from './plan.ts';

const yaml = (routers: string, top = ''): string => `admin: {port: 0}${top}\nnamers: []\nrouters:\n${routers}`;
const router = (label: string, dtab: string, servers: string, extra = ''): string =>
  `- label: ${label}\n  dtab: "${dtab}"\n  servers:\n${servers}${extra}\n`;
const srv = (port: number, dst = '/svc/a', extra = ''): string => `  - {port: ${port}, dstName: ${dst}${extra}}\n`;
const plan = (a: string, b: string) => planReload(parseConfig(a, 'old.yml'), parseConfig(b, 'new.yml'));
const D = '/svc => /$/inet/127.0.0.1/1;';

describe('reload plan', () => {
  const table: [what: string, old: string, next: string, lines: string[]][] = [
    ['nothing', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(1))), []],
    ['a server added and one removed', yaml(router('r', D, srv(1) + srv(2))), yaml(router('r', D, srv(1) + srv(3))), [
      'server r 127.0.0.1:3: added (starts listening)',
      'server r 127.0.0.1:2: removed (stops accepting; open connections drain for admin.graceSecs, then the rest are cut)',
    ]],
    ['a server changed in place', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(1, '/svc/b', ', idleTimeoutMs: 5'))), [
      'server r 127.0.0.1:1: dstName, idleTimeoutMs changed (new connections get the new settings; open ones keep theirs and run to their end)',
    ]],
    ['a moved server is removed and added', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(2))), [
      'server r 127.0.0.1:2: added (starts listening)',
      'server r 127.0.0.1:1: removed (stops accepting; open connections drain for admin.graceSecs, then the rest are cut)',
    ]],
    ['any-port servers match by place', yaml(router('r', D, srv(0) + srv(0))), yaml(router('r', D, srv(0) + srv(0, '/svc/b'))), [
      'server r 127.0.0.1:0#1: dstName changed (new connections get the new settings; open ones keep theirs and run to their end)',
    ]],
    ['a dtab edit', yaml(router('r', D, srv(1))), yaml(router('r', '/svc => /$/inet/127.0.0.1/2;', srv(1))), [
      'router r: dtab changed (new connections; open ones keep theirs)',
    ]],
    ['client settings', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(1), '  client: {connectTimeoutMs: 5}')), [
      'router r: client changed (new connections; open ones keep theirs)',
    ]],
    ['namers, for the default interpreter', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(1))).replace('namers: []', 'namers: [{kind: io.l5d.fs, rootDir: /tmp}]'), [
      'router r: namers changed (new connections; open ones keep theirs)',
    ]],
    ['a router added and one removed', yaml(router('a', D, srv(1))), yaml(router('b', D, srv(2))), [
      'router b: added',
      'router a: removed (its open connections finish)',
      'server b 127.0.0.1:2: added (starts listening)',
      'server a 127.0.0.1:1: removed (stops accepting; open connections drain for admin.graceSecs, then the rest are cut)',
    ]],
    ['restart-only keys', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(1)), '\nworkers: 2\nbufferSizeBytes: 4096').replace('admin: {port: 0}', 'admin: {port: 9, graceSecs: 3}'), [
      'workers: changed, needs a restart (the running value stays)',
      'bufferSizeBytes: changed, needs a restart (the running value stays)',
      'admin.graceSecs: changed, needs a restart (the running value stays)',
      'admin.port: changed, needs a restart (the running value stays)',
    ]],
    ['watchConfig turned on', yaml(router('r', D, srv(1))), yaml(router('r', D, srv(1)), '\nwatchConfig: true'), ['watchConfig: on']],
  ];
  for (const [what, a, b, lines] of table) {
    it(what, () => assert.deepEqual(planLines(plan(a, b)), lines));
  }

  it('a kept server under a changed router is marked to follow it', () => {
    const p = plan(yaml(router('r', D, srv(1))), yaml(router('r', '/svc => /$/inet/127.0.0.1/2;', srv(1))));
    assert.deepEqual(p.servers, [{ kind: 'kept', rt: 'r', key: '127.0.0.1:1', old: [0, 0], next: [0, 0], what: ['router'] }]);
  });

  it('is empty when only restart-only keys differ, and the effective config keeps their running values', () => {
    const a = parseConfig(yaml(router('r', D, srv(1))), 'a.yml');
    const b = parseConfig(yaml(router('r', D, srv(1)), '\nworkers: 4'), 'b.yml');
    assert.equal(isEmpty(planReload(a, b)), true);
    assert.equal(effectiveConfig(a, b).workers, undefined);
  });
});
