// Shared by the delegator tests: an empty admin state, and a router over io.l5d.fs files.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppState } from '../../src/admin/state.ts';
import { createDefaultInterpreter } from '../../src/interpreter/default.ts';
import type { Interpreter } from '../../src/interpreter/interpreter.ts';
import { createLogger } from '../../src/log.ts';
import { Registry } from '../../src/metrics/registry.ts';

const log = createLogger('silent');

export const EMPTY_STATE: AppState = {
  at: 0, routers: [], servers: [], processes: [], recentErrors: [],
  process: { pid: 1, nodeVersion: '', startedAt: 0, uptimeSecs: 0, rssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, cpuUserSecs: 0, cpuSystemSecs: 0, openFds: 0, eventLoopDelayP99Ms: 0 },
};

/** A router over io.l5d.fs files: `/svc/web` is a 3:1 union of two files, one with a weighted line. */
export function fsRouter(): { interpreter: Interpreter; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'delegator-'));
  writeFileSync(join(root, 'web'), '127.0.0.1 8001\n127.0.0.1 8002 * 2\n');
  writeFileSync(join(root, 'web-canary'), '127.0.0.1 9001\n');
  const interpreter = createDefaultInterpreter({
    dtab: '/svc => /#/io.l5d.fs; /svc/web => 3 * /#/io.l5d.fs/web & 1 * /#/io.l5d.fs/web-canary; /svc/db => /$/inet/127.1/5432 | /$/fail',
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }], log, registry: new Registry(),
  });
  return { interpreter, root };
}

