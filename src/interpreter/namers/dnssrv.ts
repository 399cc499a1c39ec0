// The `io.l5d.dnssrv` namer: `/#/io.l5d.dnssrv/_svc._tcp.example.com[/residual…]` binds to
// the SRV record's targets (lowest priority group, as RFC 2782 says), SRV weights becoming
// endpoint weights. Targets resolve to A/AAAA through the same nameservers. Each queried
// name is refreshed every `refreshIntervalSeconds`; a failed refresh keeps the last answer.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Activity, BoundName } from '../../naming/bind.ts';
import type { NameTree } from '../../naming/name-tree.ts';
import type { Path } from '../../naming/path.ts';
import type { WeightedAddr } from '../../naming/resolution.ts';
import type { Logger } from '../../log.ts';
import { type Namer, type NamerContext, owns } from './namer.ts';

type Answer = Activity<readonly WeightedAddr[]> | { kind: 'neg' };

interface Entry {
  state: Answer;
  timer: NodeJS.Timeout | undefined;
}

export class DnsSrvNamer implements Namer {
  readonly prefix: Path;
  private readonly resolver: Resolver;
  private readonly refreshMs: number;
  private readonly log: Logger;
  private readonly onChange: () => void;
  private readonly names = new Map<string, Entry>();
  private closed = false;

  constructor(opts: {
    prefix: string; refreshIntervalSeconds: number; dnsHosts: readonly { host: string; port: number }[];
    timeoutMs?: number;
  } & NamerContext) {
    this.prefix = ['#', ...opts.prefix.split('/').filter(Boolean)];
    this.resolver = new Resolver({ timeout: opts.timeoutMs ?? 2000, tries: 2 });
    if (opts.dnsHosts.length) {
      this.resolver.setServers(opts.dnsHosts.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)));
    }
    this.refreshMs = opts.refreshIntervalSeconds * 1000;
    this.log = opts.log.child({ namer: 'io.l5d.dnssrv' });
    this.onChange = opts.onChange;
  }

  lookup(path: Path): Activity<NameTree<BoundName>> | null {
    if (!owns(this.prefix, path)) return null;
    const name = path[this.prefix.length];
    if (name === undefined) return { kind: 'ok', value: { kind: 'neg' } };
    let e = this.names.get(name);
    if (!e) {
      e = { state: { kind: 'pending' }, timer: undefined };
      this.names.set(name, e);
      void this.refresh(name, e);
    }
    const s = e.state;
    if (s.kind === 'neg') return { kind: 'ok', value: { kind: 'neg' } };
    if (s.kind !== 'ok') return s;
    const id = '/' + [...this.prefix, name].join('/');
    const residual = path.slice(this.prefix.length + 1);
    return { kind: 'ok', value: { kind: 'leaf', value: { id, residual, addr: { kind: 'bound', endpoints: s.value } } } };
  }

  close(): void {
    this.closed = true;
    for (const e of this.names.values()) clearTimeout(e.timer);
    this.names.clear();
    this.resolver.cancel();
  }

  private async query(name: string): Promise<Answer> {
    let records;
    try {
      records = await this.resolver.resolveSrv(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return { kind: 'neg' };
      throw err;
    }
    if (records.length === 0) return { kind: 'neg' };
    const best = Math.min(...records.map((r) => r.priority));
    const group = records.filter((r) => r.priority === best);
    // linkerd-tcp: port 0 cannot be dialled: a bad answer (the last good one stays).
    const zero = group.find((r) => r.port === 0);
    if (zero) throw new Error(`SRV record for ${zero.name} has port 0`);
    const out: WeightedAddr[] = [];
    for (const r of group) {
      const ips = isIP(r.name) ? [r.name] : await this.addresses(r.name);
      // RFC 2782: weight 0 records get a small chance when others exist; give them a sliver.
      const w = r.weight > 0 ? r.weight : group.every((g) => g.weight === 0) ? 1 : 0.01;
      for (const ip of ips) out.push({ host: ip, port: r.port, weight: w / ips.length });
    }
    return { kind: 'ok', value: out };
  }

  private async addresses(host: string): Promise<string[]> {
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    const ips = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (ips.length === 0) throw new Error(`no A/AAAA records for SRV target ${host}`);
    return ips;
  }

  private async refresh(name: string, e: Entry): Promise<void> {
    let next: Answer;
    try {
      next = await this.query(name);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      next = e.state.kind === 'ok' ? e.state : { kind: 'failed', reason: `SRV lookup of ${name} failed: ${why}` };
      this.log.warn({ name, err: why }, 'io.l5d.dnssrv: lookup failed');
    }
    if (this.closed || this.names.get(name) !== e) return;
    const changed = JSON.stringify(next) !== JSON.stringify(e.state);
    e.state = next;
    e.timer = setTimeout(() => void this.refresh(name, e), this.refreshMs);
    e.timer.unref();
    if (changed) this.onChange();
  }
}
