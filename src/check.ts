// `--check`: describes a valid config — routers, servers, client settings — and what each
// server's destination resolves to right now (bounded wait), without listening on anything.
// A `{sni}` server's template is not a name: it is shown with the dtab entries it can reach.
import { checkAdminToken, checkEngines, clientTlsContexts, createInterpreter, type EnginePlan } from './app.ts';
import { connectorConfigFor } from './connector/client-config.ts';
import { hasSniPlaceholder, parseSniTemplate, reachableDentries } from './config/sni-template.ts';
import type { Config, RouterConfig, ServerConfig } from './config/types.ts';
import { silentLogger } from './log.ts';
import { Registry } from './metrics/registry.ts';
import { escapeTerminal, redactUrl } from './safe-text.ts';
import { parseDtab, showDentry } from './naming/dtab.ts';
import { showPath } from './naming/path.ts';
import { addrKey, type Resolution } from './naming/resolution.ts';
import { TlsTerminator } from './server/tls.ts';

const RESOLVE_WAIT_MS = 3000;

function showResolution(r: Resolution | undefined): string {
  if (!r) return `unresolved after ${RESOLVE_WAIT_MS}ms`;
  switch (r.kind) {
    case 'neg':
      return 'neg (no such name)';
    case 'failed':
      return `failed: ${r.reason}`;
    case 'bound':
      if (r.endpoints.length === 0) return 'bound, no endpoints';
      return r.endpoints.map((e) => `${addrKey(e.host, e.port)}${e.weight !== 1 ? ` *${Math.round(e.weight * 1000) / 1000}` : ''}`).join(', ');
  }
}

/**
 * The names a server resolves as they are written: its dstName, or for a `{sni}` template
 * (never a name itself: each connection's is its expansion) only its defaultDstName.
 */
function fixedNames(s: ServerConfig): string[] {
  if (!hasSniPlaceholder(s.dstName)) return [s.dstName];
  return s.defaultDstName === undefined ? [] : [s.defaultDstName];
}

async function resolveAll(rc: RouterConfig, config: Config): Promise<Map<string, Resolution | undefined>> {
  const interp = createInterpreter(rc, config, new Registry(), silentLogger());
  const names = [...new Set(rc.servers.flatMap(fixedNames))];
  const out = new Map<string, Resolution | undefined>();
  await Promise.all(names.map((name) => new Promise<void>((done) => {
    const timer = setTimeout(() => { w.close(); done(); }, RESOLVE_WAIT_MS);
    const w = interp.watch(name, (r) => {
      out.set(name, r);
      clearTimeout(timer);
      w.close();
      done();
    });
  })));
  await interp.close();
  return out;
}

/** An SNI-routed server's lines: its template, the dtab entries its names can reach, its default. */
function sniLines(rc: RouterConfig, s: ServerConfig, resolved: Map<string, Resolution | undefined>): string[] {
  const t = parseSniTemplate(s.dstName);
  const reach = reachableDentries(t, parseDtab(rc.dtab)).map(showDentry);
  const ic = rc.interpreter;
  // With namerd, its namespace's dtab is not ours to read: say where the names go.
  const namerd = ic.kind === 'default' ? undefined : `namerd's dtab of namespace ${ic.namespace}, under ${showPath(t.fixed)}`;
  const reachable = [...reach, ...(namerd ? [namerd] : [])];
  // No entry: `/$/…` and `/#/…` names still reach the namers (inet, fs, dnssrv) as written.
  const none = t.fixed[0] === '$' || t.fixed[0] === '#' ? 'none (each name goes to the namers as written)' : 'none (every name it makes is neg)';
  const d = s.defaultDstName;
  return [
    `    routed by SNI: ${s.dstName}, the client's server name in place of {sni}`,
    `    dtab entries it can reach: ${reachable.length ? reachable.join('; ') : none}`,
    d === undefined
      ? '    no defaultDstName: connections without a usable name are closed'
      : `    default destination ${d} → ${showResolution(resolved.get(d))}`,
  ];
}

/** Loads every TLS key and certificate as a start would; one message per bad setting. */
export function tlsProblems(config: Config): string[] {
  const out: string[] = [];
  const attempt = (f: () => unknown): void => {
    try {
      f();
    } catch (e) {
      out.push((e as Error).message);
    }
  };
  config.routers.forEach((rc, i) => {
    attempt(() => clientTlsContexts(rc, i));
    rc.servers.forEach((s, j) => {
      const tls = s.tls;
      if (tls) attempt(() => new TlsTerminator(tls, `routers[${i}].servers[${j}].tls`, tls.handshakeTimeoutMs, { secure() {}, failed() {} }));
    });
  });
  return out;
}

/** `env`: where LINKERD_TCP_ADMIN_TOKEN is read, to check it against admin.tokenFile as a start would. */
export async function describeConfig(config: Config, file: string, env: Readonly<Record<string, string | undefined>>): Promise<string> {
  const lines = [`admin: ${config.admin.ip}:${config.admin.port}`];
  let plans: EnginePlan[] = [], engineError: string | undefined, k = 0;
  try {
    plans = checkEngines(config, file);
  } catch (e) {
    engineError = (e as Error).message;
  }
  for (const rc of config.routers) {
    const ic = rc.interpreter;
    lines.push(`router ${rc.label}: interpreter ${ic.kind === 'default' ? 'default (dtab + namers)' : `${ic.kind} ${redactUrl(ic.baseUrl)} namespace ${ic.namespace} mode ${ic.mode}${ic.watch ? ' (watch)' : ` every ${ic.periodSecs}s`}`}`);
    if (rc.dtab.trim()) lines.push(`  dtab: ${rc.dtab.trim().replace(/\s*\n\s*/g, ' ')}`);
    const resolved = await resolveAll(rc, config);
    for (const s of rc.servers) {
      const cc = connectorConfigFor(rc.client, s.dstName);
      const extras = [
        s.tls ? `tls${s.tls.alpnProtocols ? ` alpn=${s.tls.alpnProtocols.join(',')}` : ''}${s.tls.clientAuth ? ' mTLS' : ''}` : '',
        s.connectTimeoutMs !== undefined ? `connectTimeoutMs=${s.connectTimeoutMs}` : '',
        cc.connectTimeoutMs !== undefined ? `client.connectTimeoutMs=${cc.connectTimeoutMs}` : '',
        cc.tls ? `client.tls=${cc.tls.dnsName}` : '',
      ].filter(Boolean);
      lines.push(`  server ${s.ip.includes(':') ? `[${s.ip}]` : s.ip}:${s.port} → ${s.dstName}${extras.length ? ` (${extras.join(', ')})` : ''}`);
      if (hasSniPlaceholder(s.dstName)) lines.push(...sniLines(rc, s, resolved));
      else lines.push(`    destination ${s.dstName} → ${showResolution(resolved.get(s.dstName))}`);
      const plan = plans[k++];
      if (plan) lines.push(`    engine ${plan.kind} (${plan.why})`);
    }
  }
  // The verdict comes first, and says OK only when nothing below is an error.
  const problems = tlsProblems(config);
  if (engineError) problems.push(engineError);
  try {
    checkAdminToken(config, env); // both token sources set, or a token file that a start could not read
  } catch (e) {
    problems.push((e as Error).message);
  }
  const verdict = problems.length === 0 ? `${file}: config OK` : `${file}: config has ${problems.length} error${problems.length === 1 ? '' : 's'}`;
  for (const e of problems) lines.push(`error: ${e}`);
  // Names, dtabs and namerd's causes are not ours: nothing in them may drive the terminal.
  return [verdict, ...lines].map(escapeTerminal).join('\n') + '\n';
}
