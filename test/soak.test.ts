// The short form of the integrity soak (the long one is `npm run soak`).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { soak } from './soak/soak.ts';

it('soak: no byte lost or corrupted under discovery churn and a backend restart; every connection accounted for', { timeout: 120_000 }, async () => {
  const r = await soak({ seconds: 5, concurrency: 100, maxBytes: 128 * 1024 });
  assert.deepEqual(r.corrupted, [], `${r.corrupted.length} failed connections not explained by the restart: ${r.corrupted.slice(0, 5).join(" | ")}; access-log reasons ${JSON.stringify(r.reasons)}`);
  assert.ok(r.verified > 100, `only ${r.verified} connections verified`);
  assert.ok(r.cut > 0, 'the backend restart cut some connections (else the chaos did not happen)');
  assert.equal(r.verified + r.cut, r.connections);
  assert.equal(r.accessRecords, r.connections, 'one access record per connection');
  assert.equal(r.accepts, r.connections);
  assert.equal(r.closesPlusFailures, r.connections);
});
