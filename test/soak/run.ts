// `npm run soak -- [seconds] [concurrency]`: the long form of the integrity soak.
import { soak } from './soak.ts';

const seconds = Number(process.argv[2] ?? 60);
const concurrency = Number(process.argv[3] ?? 500);
const r = await soak({ seconds, concurrency, maxBytes: 256 * 1024, log: (m) => process.stderr.write(`soak: ${m}\n`) });
process.stdout.write(JSON.stringify({ ...r, corrupted: r.corrupted.slice(0, 20) }, null, 2) + '\n');
const ok = r.corrupted.length === 0 && r.accessRecords === r.connections && r.accepts === r.connections && r.closesPlusFailures === r.connections;
process.stdout.write(ok ? 'soak: OK\n' : 'soak: FAILED\n');
process.exit(ok ? 0 : 1);
