// The CLI: `linkerd-tcp <config>`, -h, -V, --check. With lifecycle.ts, the module that
// touches `process`: arguments, exit codes and signals. Exit codes: 0 ok or drained after a
// signal; 1 bad config or environment, startup failure, second signal, abort or drain
// deadline; 2 bad command line; 70 a bug. main.ts checks the Node.js version first, holds
// the signals (signals.ts), then imports this.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { App, checkAdminToken, checkEngines, engineEnvProblem } from './app.ts';
import { describeConfig, tlsProblems } from './check.ts';
import { defaultWorkers, readCpuLimit } from './cluster/cpu-quota.ts';
import { runPrimary } from './cluster/primary.ts';
import { runWorker } from './cluster/worker.ts';
import { planLines, planReload } from './reload/plan.ts';
import { Reloader } from './reload/reloader.ts';
import { type LoadedConfig, readConfigFile } from './reload/source.ts';
import type { Config } from './config/types.ts';
import { LinkerdTcpError } from './errors.ts';
import { EXIT, HARD_EXIT_MARGIN_MS, Lifecycle, PRIMARY_EXTRA_MARGIN_MS } from './lifecycle.ts';
import { createLogger, formatProblem, levelFromEnv, levelProblem, type Logger } from './log.ts';
import { escapeLines, escapeTerminal } from './safe-text.ts';
import { releaseSignals, routeHup, routeStops } from './signals.ts';

const USAGE = `linkerd-tcp — a TCP and TLS load balancer for the linkerd service mesh

USAGE:
    linkerd-tcp [--check] <PATH>

FLAGS:
    -h, --help       Prints help information
    -V, --version    Prints version information
        --check      Validates the config, prints routers, servers and destinations, and exits
        --check --diff OLD NEW
                     Also prints what a reload from OLD to NEW would change

ARGS:
    <PATH>    Config file path (YAML, or JSON when it starts with '{'); '-' reads stdin

ENVIRONMENT:
    LOG_LEVEL        trace|debug|info|warn|error|fatal|silent (default info)
    RUST_LOG         linkerd-tcp's form, e.g. linkerd_tcp=info (LOG_LEVEL wins)
    LOG_FORMAT       json|text (default: text on a terminal, else json)
    LINKERD_TCP_WORKERS
                     processes to run when the config has no \`workers\`, 1 to 64
                     (default: the cores, capped by the cgroup CPU quota); with
                     \`threads: true\`, native I/O threads in one process
    LINKERD_TCP_ENGINE
                     auto|native|node: overrides the config's \`engine\`
    LINKERD_TCP_ADMIN_TOKEN
                     the bearer token POST /shutdown, /abort and /reload need
                     (or admin.tokenFile; both set is refused)
    LINKERD_TCP_NATIVE_ADDON
                     another build of the native engine's addon (a .node file)
    NODE_OPTIONS     Node's own; with workers, a --max-semi-space-size there replaces
                     the workers' young-generation cap
    Any other value of these (LOG_LEVEL=bogus, LINKERD_TCP_WORKERS=0) is refused: exit 1.

EXIT CODES:
    0  stopped cleanly (after SIGINT/SIGTERM and draining), or --check passed
    1  invalid config or environment variable, a bad TLS key or certificate, a listener could
       not bind (port in use), a second signal, POST /abort, or a drain still running ${HARD_EXIT_MARGIN_MS / 1000} s
       after admin.graceSecs (${(HARD_EXIT_MARGIN_MS + PRIMARY_EXTRA_MARGIN_MS) / 1000} s with workers: the first process waits for theirs)
    2  bad command line
    70 internal error (a bug)

SIGNALS:
    SIGINT, SIGTERM  stop accepting, drain for admin.graceSecs, exit 0 (a second one exits now, 1);
                     with workers, to the first process or to the whole process group (Ctrl-C);
                     one that arrives while starting waits for the start to finish, then drains
    SIGHUP           reload the config file (servers, routers, dtabs, namers, client settings;
                     all or nothing), then TLS keys and certificates; POST /reload does the same
`;

function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return `linkerd-tcp ${(pkg as { version: string }).version}`;
}

/** LINKERD_TCP_WORKERS's bounds: the config key's. */
const MAX_WORKERS = 64;

/** LINKERD_TCP_WORKERS as a count, undefined when unset or empty; envProblems refused anything else. */
function workersFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env['LINKERD_TCP_WORKERS']?.trim();
  return raw ? Number(raw) : undefined;
}

/**
 * What is wrong with the environment, one message per variable: a typo (LOG_FORMAT=xml,
 * LINKERD_TCP_WORKERS=3.5) must not silently mean the default.
 */
function envProblems(env: NodeJS.ProcessEnv): string[] {
  const raw = env['LINKERD_TCP_WORKERS'];
  const workers = raw !== undefined && raw.trim() !== '' && !(/^\d+$/.test(raw.trim()) && Number(raw) >= 1 && Number(raw) <= MAX_WORKERS)
    ? `LINKERD_TCP_WORKERS: expected a whole number from 1 to ${MAX_WORKERS}, got ${JSON.stringify(raw.slice(0, 40))}`
    : undefined;
  return [levelProblem(env), formatProblem(env), engineEnvProblem(env['LINKERD_TCP_ENGINE']), workers].filter((p): p is string => p !== undefined);
}

/**
 * How many processes serve: the config's `workers`, else LINKERD_TCP_WORKERS, else the
 * cores this process may use (the cgroup's CPU quota, as in a container, caps the count).
 */
function workerCount(config: Config): number {
  return config.workers ?? workersFromEnv(process.env) ?? defaultWorkers(availableParallelism(), readCpuLimit());
}

async function main(argv: string[]): Promise<number> {
  if (cluster.isWorker) return runWorker(createLogger(levelFromEnv(process.env)), HARD_EXIT_MARGIN_MS);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' }, check: { type: 'boolean' }, diff: { type: 'boolean' } },
    });
  } catch (e) {
    releaseSignals();
    process.stderr.write(`linkerd-tcp: ${escapeTerminal((e as Error).message)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  // Only a start has something to drain: any other command ends on a signal as programs do.
  if (values.help || values.version || values.check || values.diff || positionals.length !== 1) releaseSignals();
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (!values.diff && positionals.length !== 1) {
    process.stderr.write(`linkerd-tcp: expected exactly one config path, got ${positionals.length}\n\n${USAGE}`);
    return 2;
  }
  const badEnv = envProblems(process.env);
  if (badEnv.length) {
    process.stderr.write(badEnv.map((p) => `linkerd-tcp: ${escapeTerminal(p)}\n`).join(''));
    return 1;
  }
  if (values.diff) return diff(values.check === true, positionals);
  let loaded: LoadedConfig;
  let config: Config;
  try {
    loaded = readConfigFile(positionals[0]!);
    config = loaded.config;
    checkEngines(config, positionals[0]!); // `engine: native` without the addon is a config error, before any fork
  } catch (e) {
    return fail(e);
  }
  if (values.check) {
    const report = await describeConfig(config, positionals[0]!, process.env);
    process.stdout.write(report);
    return report.includes('\nerror: ') ? 1 : 0;
  }
  try {
    // The admin server reads the token once the listeners are bound: refuse a bad one before anything binds or forks.
    checkAdminToken(config, process.env);
  } catch (e) {
    return fail(e);
  }
  const n = workerCount(config);
  const log = createLogger(levelFromEnv(process.env));
  log.info({ config: loaded.path, workers: n, ...(config.threads ? { threads: true } : {}) }, 'starting');
  // threads: one process; plain TCP servers run on n native I/O threads (src/engine/thread-server.ts).
  if (n > 1 && !config.threads) {
    try {
      return await runPrimary(config, n, log, HARD_EXIT_MARGIN_MS, { loaded, validate: checkProblems(loaded.path) });
    } catch (e) {
      return fail(e);
    }
  }
  return run(loaded, log, config.threads ? n : 0);
}

/**
 * `--check --diff OLD NEW`: what a reload from OLD (say, the running file's copy) to NEW
 * would do, then NEW checked as `--check` does. Exit 1 when NEW (or OLD) is invalid.
 */
async function diff(check: boolean, paths: readonly string[]): Promise<number> {
  if (!check || paths.length !== 2) {
    process.stderr.write(`linkerd-tcp: --diff goes with --check and two config paths: --check --diff OLD NEW\n\n${USAGE}`);
    return 2;
  }
  let old: LoadedConfig, next: LoadedConfig;
  try {
    old = readConfigFile(paths[0]!);
    next = readConfigFile(paths[1]!);
    checkEngines(next.config, paths[1]!);
  } catch (e) {
    return fail(e);
  }
  const lines = planLines(planReload(old.config, next.config));
  const head = `a reload from ${paths[0]} (sha256 ${old.hash.slice(0, 12)}) to ${paths[1]} (sha256 ${next.hash.slice(0, 12)}) would:\n`;
  const body = lines.length ? lines.map((l) => `  - ${l}\n`).join('') : '  - change nothing\n';
  const report = await describeConfig(next.config, paths[1]!, process.env);
  process.stdout.write(escapeLines(head + body) + '\n' + report);
  return report.includes('\nerror: ') ? 1 : 0;
}

/** For reloads: what `--check` rejects beyond decoding (TLS material, the engine), one message each. */
function checkProblems(path: string): (c: Config) => string[] {
  return (c) => {
    const out = tlsProblems(c);
    try {
      checkEngines(c, path);
    } catch (e) {
      out.push((e as Error).message);
    }
    return out;
  };
}

async function run(loaded: LoadedConfig, log: Logger, ioThreads: number): Promise<number> {
  const config = loaded.config;
  const lc: Lifecycle = new Lifecycle({
    log, marginMs: HARD_EXIT_MARGIN_MS,
    graceMs: () => app.config.admin.graceSecs * 1000,
    drain: (graceMs) => {
      reloader.close();
      return app.close(graceMs);
    },
  });
  const app = new App(config, log, {
    shutdown: () => lc.stop('admin'), abort: () => lc.abort(),
    reload: () => reloader.reload('POST /reload'), configInfo: () => reloader.info,
  }, { ioThreads });
  // SIGHUP, POST /reload and (watchConfig) a change of the file re-read it; all or nothing.
  const reloader = new Reloader({ initial: loaded, apply: (next, plan) => app.reload(next, plan), log, registry: app.registry, validate: checkProblems(loaded.path) });
  // A stop held since the process began (signals.ts) drains now, and the start is abandoned;
  // one during the start drains once it is done.
  routeStops((s) => lc.stop(s));
  let started: boolean;
  try {
    // Raced with the exit code: a second signal exits at once, also while the start runs.
    started = await Promise.race([lc.start(() => app.start()), lc.exitCode.then(() => false)]);
  } catch (e) {
    reloader.close();
    return fail(e);
  }
  // SIGHUP: the config first, then every TLS key and certificate again (as before reloads
  // existed). One held while starting goes now: the file may have changed since it was read.
  if (started) routeHup(() => void reloader.reload('SIGHUP').then(() => app.reloadTls('SIGHUP')));
  return lc.exitCode;
}

/** Prints an expected error (no stack trace) and returns exit code 1. */
function fail(e: unknown): number {
  if (e instanceof LinkerdTcpError) {
    // One line per problem; what came from the config or the network is escaped for the terminal.
    process.stderr.write(`linkerd-tcp: ${escapeLines(e.message)}\n`);
    return EXIT.failed;
  }
  throw e;
}

/**
 * Exits once stdout and stderr have taken what was written to them: on POSIX a pipe is
 * written asynchronously, and process.exit() drops what a slow reader has not taken yet (a
 * `--check` report, an error line: a loaded machine lost them). Bounded: a reader that never
 * reads does not keep the process.
 */
function exitFlushed(code: number): void {
  let pending = 2;
  const done = (): void => { if (--pending === 0) process.exit(code); };
  setTimeout(() => process.exit(code), 5000);
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(
  (code) => exitFlushed(code),
  (e: unknown) => {
    process.stderr.write(`linkerd-tcp: internal error: ${escapeLines((e as Error).stack ?? String(e))}\n`);
    exitFlushed(EXIT.internal);
  },
);
