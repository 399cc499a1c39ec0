// Turns bench rows into a table of figures and ratios to a direct connection; optionally
// writes BENCHMARKS.md (the command, the machine, the table).
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

/** Writes the run into BENCHMARKS.md between its markers, keeping the hand-written analysis around them. */
export function writeReport(rows: Row[], o: { machine: string; secs: number; idleConns: number; write: boolean }): void {
  const t = table(rows);
  process.stdout.write(t + '\n');
  if (!o.write) return;
  const file = new URL('../BENCHMARKS.md', import.meta.url);
  const run = `<!-- bench:start (written by \`npm run bench -- --write\`) -->
Command: \`npm run bench -- --write\` (${o.secs} s per measurement; ${o.idleConns} idle connections for memory), ${new Date().toISOString().slice(0, 10)}.
Machine: ${o.machine}.

${t}
<!-- bench:end -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n<!-- bench:start --><!-- bench:end -->\n';
  const start = text.indexOf('<!-- bench:start'), end = text.indexOf('<!-- bench:end -->');
  text = start >= 0 && end > start ? text.slice(0, start) + run + text.slice(end + '<!-- bench:end -->'.length) : `${text.trimEnd()}\n\n${run}\n`;
  writeFileSync(file, text);
}
