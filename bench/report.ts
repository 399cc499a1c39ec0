// Turns bench rows into a table of figures and ratios to a direct connection; optionally
// writes BENCHMARKS.md (the command, the machine, the table); the same for the TLS part's
// medians over interleaved rounds, in a section of its own.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface Row {
  name: string;
  thr1?: number; thr4?: number; kaRps?: number; kaP50?: number; kaP99?: number; connRps?: number; tlsRps?: number;
  rssIdleMiB?: number | undefined; rssHeldMiB?: number; kibPerIdleConn?: number; cpuPerReqUs?: number; cpuPerConnUs?: number;
  /** new TLS connections/s to the backend's TLS port through a plain TCP server and through SNI passthrough */
  tcpTlsRps?: number; sniPassRps?: number;
  /** CPU seconds per GB over the 1-stream runs; p99 of a new connection's request; RSS once every load ran */
  cpuPerGB?: number; connP99?: number; rssAfterMiB?: number;
}

const f = (v: number | undefined, d = 2): string => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d));

export function table(rows: Row[]): string {
  const d = rows.find((r) => r.name === 'direct')!;
  const ratio = (v: number | undefined, base: number | undefined): string => (v === undefined || !base ? '–' : (v / base).toFixed(2));
  const lines = [
    '| | 1-stream Gbit/s | 4-stream Gbit/s | keep-alive req/s | p50 ms | p99 ms | new conn/s | close p99 ms | TLS handshakes/s | RSS idle MiB | RSS 5k idle MiB | KiB / idle conn | RSS after load MiB | CPU s / GB | CPU µs / req | CPU µs / conn |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${f(r.thr1)} | ${f(r.thr4)} | ${f(r.kaRps, 0)} | ${f(r.kaP50)} | ${f(r.kaP99)} | ${f(r.connRps, 0)} | ${f(r.connP99)} | ${f(r.tlsRps, 0)} | ${f(r.rssIdleMiB, 1)} | ${f(r.rssHeldMiB, 1)} | ${f(r.kibPerIdleConn, 1)} | ${f(r.rssAfterMiB, 1)} | ${f(r.cpuPerGB, 3)} | ${f(r.cpuPerReqUs, 1)} | ${f(r.cpuPerConnUs, 1)} |`),
    '',
    'Ratios to direct (higher is better; p99 is proxy/direct, lower is better):',
    '',
    '| | 1-stream | 4-stream | keep-alive req/s | new conn/s | TLS handshakes/s | keep-alive p99 | close p99 |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.filter((r) => r !== d).map((r) => `| ${r.name} | ${ratio(r.thr1, d.thr1)} | ${ratio(r.thr4, d.thr4)} | ${ratio(r.kaRps, d.kaRps)} | ${ratio(r.connRps, d.connRps)} | ${ratio(r.tlsRps, d.tlsRps)} | ${ratio(r.kaP99, d.kaP99)} | ${ratio(r.connP99, d.connP99)} |`),
    '',
    'SNI passthrough (new TLS connections/s to the backend\'s TLS port; target: passthrough/plain ≥ 0.90):',
    '',
    '| | plain TCP server | SNI passthrough | passthrough / plain |',
    '|---|---|---|---|',
    ...rows.filter((r) => r.tcpTlsRps !== undefined).map((r) => `| ${r.name} | ${f(r.tcpTlsRps, 0)} | ${f(r.sniPassRps, 0)} | ${ratio(r.sniPassRps, r.tcpTlsRps)} |`),
  ];
  return lines.join('\n');
}

/** One TLS SUT: the median of its rounds for each figure, and each figure's spread over them. */
export interface TlsRow {
  name: string;
  /** keep-alive requests/s over TLS (1 KiB answers); bulk MB/s (10^6 bytes) over TLS keep-alive (10 MiB answers) */
  kaRps?: number | undefined; bulkMBps?: number | undefined;
  /** new TLS connections/s (one full handshake and one request each) and the SUT tree's CPU ms per 1,000 of them */
  hsRps?: number | undefined; cpuMsPerKHs?: number | undefined;
  /** RSS growth of the SUT tree per TLS connection held (handshake done, one request answered):
   * the moment the last one answered, and after they idled */
  kibPerTlsAtOnce?: number | undefined; kibPerIdleTls?: number | undefined;
  /** (max − min) / median over the rounds, per figure above */
  spread?: Partial<Record<'kaRps' | 'bulkMBps' | 'hsRps' | 'cpuMsPerKHs' | 'kibPerTlsAtOnce' | 'kibPerIdleTls', number>>;
}

export function tlsTable(rows: TlsRow[], o: { rounds: number; idleConns: number; idleSecs: number }): string {
  const d = rows.find((r) => r.name === 'direct');
  const ratio = (v: number | undefined, base: number | undefined): string => (v === undefined || !base ? '–' : (v / base).toFixed(2));
  const pct = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '–' : `${Math.round(v * 100)}%`);
  return [
    `TLS, terminated by each (ECDSA P-256; direct = nginx terminating TLS itself), median of ${o.rounds} interleaved rounds:`,
    '',
    `| | TLS keep-alive req/s | TLS bulk MB/s | TLS handshakes/s | CPU ms / 1k handshakes | KiB / TLS conn (${o.idleConns}), at once | KiB / idle TLS conn, after ${o.idleSecs} s |`,
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${f(r.kaRps, 0)} | ${f(r.bulkMBps, 0)} | ${f(r.hsRps, 0)} | ${f(r.cpuMsPerKHs, 0)} | ${f(r.kibPerTlsAtOnce, 1)} | ${f(r.kibPerIdleTls, 1)} |`),
    '',
    'TLS ratios to direct (req/s, MB/s, handshakes/s: higher is better; CPU and memory: SUT/direct, lower is better):',
    '',
    '| | TLS keep-alive req/s | TLS bulk MB/s | TLS handshakes/s | CPU / handshake | KiB / TLS conn, at once | KiB / idle TLS conn |',
    '|---|---|---|---|---|---|---|',
    ...rows.filter((r) => r !== d).map((r) => `| ${r.name} | ${ratio(r.kaRps, d?.kaRps)} | ${ratio(r.bulkMBps, d?.bulkMBps)} | ${ratio(r.hsRps, d?.hsRps)} | ${ratio(r.cpuMsPerKHs, d?.cpuMsPerKHs)} | ${ratio(r.kibPerTlsAtOnce, d?.kibPerTlsAtOnce)} | ${ratio(r.kibPerIdleTls, d?.kibPerIdleTls)} |`),
    '',
    'Spread over the rounds, (max − min) / median (how far one round may be off):',
    '',
    '| | TLS keep-alive req/s | TLS bulk MB/s | TLS handshakes/s | CPU / handshake | KiB / TLS conn, at once | KiB / idle TLS conn |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${pct(r.spread?.kaRps)} | ${pct(r.spread?.bulkMBps)} | ${pct(r.spread?.hsRps)} | ${pct(r.spread?.cpuMsPerKHs)} | ${pct(r.spread?.kibPerTlsAtOnce)} | ${pct(r.spread?.kibPerIdleTls)} |`),
  ].join('\n');
}

/** Writes `text` into BENCHMARKS.md between the `marker` comments (`bench` for the plain
 * table, `bench-tls` for the TLS one), keeping the hand-written analysis around them; a
 * missing pair is added at the end. */
export function writeSection(text: string, o: { marker: 'bench' | 'bench-tls'; command: string; note: string; machine: string }): void {
  const file = new URL('../BENCHMARKS.md', import.meta.url);
  const open = `<!-- ${o.marker}:start`, close = `<!-- ${o.marker}:end -->`;
  const run = `${open} (written by \`${o.command}\`) -->
Command: \`${o.command}\` (${o.note}), ${new Date().toISOString().slice(0, 10)}.
Machine: ${o.machine}.

${text}
${close}`;
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = doc.indexOf(open), end = doc.indexOf(close);
  doc = start >= 0 && end > start ? doc.slice(0, start) + run + doc.slice(end + close.length) : `${doc.trimEnd()}\n\n${run}\n`;
  writeFileSync(file, doc);
}

/** Prints the plain run's table and, with `write`, records it in BENCHMARKS.md. */
export function writeReport(rows: Row[], o: { machine: string; secs: number; idleConns: number; write: boolean }): void {
  const t = table(rows);
  process.stdout.write(t + '\n');
  if (o.write) writeSection(t, { marker: 'bench', command: 'npm run bench -- --write', note: `${o.secs} s per measurement; ${o.idleConns} idle connections for memory`, machine: o.machine });
}
