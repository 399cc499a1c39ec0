// `npm run soak -- [seconds] [concurrency]`: the long form of the integrity soak.
// `npm run soak -- tls [connections] [concurrency] [ceilingMiB] [workers]`: the long TLS churn
// (default 24000 connections, 50 at a time, 2 workers): the workers' RSS may grow at most
// ceilingMiB (default 48) after the first tenth of the connections (the warm-up).
import { soak } from './soak.ts';
import { tlsChurn } from './tls-churn.ts';

const log = (m: string): boolean => process.stderr.write(`soak: ${m}\n`);

if (process.argv[2] === 'tls') {
  const connections = Number(process.argv[3] ?? 24_000);
  const concurrency = Number(process.argv[4] ?? 50);
  const ceilingMiB = Number(process.argv[5] ?? 48);
  const workers = Number(process.argv[6] ?? 2);
  const r = await tlsChurn({ connections, concurrency, workers, warmup: Math.floor(connections / 10), log });
  const grewMiB = Math.round((r.end.rssMiB - r.afterWarmup.rssMiB) * 10) / 10;
  process.stdout.write(JSON.stringify({ ...r, samples: undefined, workers, grewAfterWarmupMiB: grewMiB, ceilingMiB }, null, 2) + '\n');
  const ok = r.failed === 0 && grewMiB <= ceilingMiB;
  process.stdout.write(ok ? 'soak: OK\n' : 'soak: FAILED\n');
  process.exit(ok ? 0 : 1);
}

const seconds = Number(process.argv[2] ?? 60);
const concurrency = Number(process.argv[3] ?? 500);
const r = await soak({ seconds, concurrency, maxBytes: 256 * 1024, log });
process.stdout.write(JSON.stringify({ ...r, corrupted: r.corrupted.slice(0, 20) }, null, 2) + '\n');
const ok = r.corrupted.length === 0 && r.accessRecords === r.connections && r.accepts === r.connections && r.closesPlusFailures === r.connections;
process.stdout.write(ok ? 'soak: OK\n' : 'soak: FAILED\n');
process.exit(ok ? 0 : 1);
