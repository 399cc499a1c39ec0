// The short form of the TLS churn soak (the long one is `npm run soak -- tls`): 4,000 TLS
// connections through two workers, each a full handshake, an echo and a close. Each worker
// runs with V8's young generation capped (src/cluster/heap-flags.ts), and after the warm-up
// the workers' RSS stays within 24 MiB. Without the cap V8 let each worker's young
// generation grow to 128 MiB: 24,000 connections grew RSS 225 MiB after warm-up (39 with
// it); this short run is too short to tell the two apart every time (11 to 40 MiB without
// the cap), hence the check of the flag itself.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { tlsChurn } from './soak/tls-churn.ts';

const CEILING_MIB = 24;

it('TLS churn: the workers\' RSS stays within its ceiling after warm-up', { timeout: 180_000 }, async (t) => {
  const r = await tlsChurn({ connections: 4000, concurrency: 20, warmup: 1000, workers: 2, sampleEvery: 1000 });
  const grew = r.end.rssMiB - r.afterWarmup.rssMiB;
  for (const s of r.samples) t.diagnostic(`${s.connections} connections: RSS ${s.rssMiB} MiB (anon ${s.anonMiB}: brk heap ${s.brkHeapMiB}, ${s.arenas} thread arenas ${s.arenasMiB}), V8 heap ${s.v8HeapMiB} MiB`);
  t.diagnostic(`${r.connections} connections in ${r.seconds} s; RSS ${r.start.rssMiB} → ${r.afterWarmup.rssMiB} (warm) → ${r.end.rssMiB} MiB`);
  assert.equal(r.failed, 0);
  assert.equal(r.commandLines.length, 2, 'two workers measured');
  for (const argv of r.commandLines) assert.ok(argv.includes('--max-semi-space-size=4'), `worker runs without the young-generation cap: ${argv.join(' ')}`);
  assert.ok(grew <= CEILING_MIB, `RSS grew ${grew.toFixed(1)} MiB after warm-up (ceiling ${CEILING_MIB})`);
});
