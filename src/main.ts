// The CLI: `linkerd-tcp <config>`, -h, -V, --check. The only module that touches
// `process`: arguments, exit codes and signals. Exit codes: 0 ok or drained after a
// signal; 1 bad config or startup failure; 2 bad command line.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { App } from './app.ts';
import { describeConfig } from './check.ts';
import { runPrimary } from './cluster/primary.ts';
import { runWorker } from './cluster/worker.ts';
import { loadConfig } from './config/load.ts';
import type { Config } from './config/types.ts';
import { LinkerdTcpError } from './errors.ts';
import { createLogger, levelFromEnv, levelProblem } from './log.ts';

const USAGE = `linkerd-tcp — a TCP and TLS load balancer for the linkerd service mesh

USAGE:
    linkerd-tcp [--check] <PATH>

FLAGS:
    -h, --help       Prints help information
    -V, --version    Prints version information
        --check      Validates the config, prints routers, servers and destinations, and exits

ARGS:
    <PATH>    Config file path (YAML, or JSON when it starts with '{'); '-' reads stdin

ENVIRONMENT:
    LOG_LEVEL        trace|debug|info|warn|error|fatal|silent (default info)
    RUST_LOG         linkerd-tcp's form, e.g. linkerd_tcp=info (LOG_LEVEL wins)
    LINKERD_TCP_WORKERS  processes to run when the config has no \`workers\` (default: the cores)

EXIT CODES:
    0  stopped cleanly (after SIGINT/SIGTERM and draining), or --check passed
    1  invalid config, a bad TLS key or certificate, or a listener could not bind
    2  bad command line
    70 internal error (a bug)

SIGNALS:
    SIGINT, SIGTERM  stop accepting, drain for admin.graceSecs, exit (a second one exits now)
    SIGHUP           reload TLS keys and certificates (they also reload when their files change)
`;

function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return `linkerd-tcp ${(pkg as { version: string }).version}`;
}

/** How many processes serve: the config's `workers`, else LINKERD_TCP_WORKERS, else the cores. */
function workerCount(config: Config): number {
  const env = Number(process.env['LINKERD_TCP_WORKERS']);
  return config.workers ?? (Number.isInteger(env) && env >= 1 ? env : availableParallelism());
}

async function main(argv: string[]): Promise<number> {
  if (cluster.isWorker) return runWorker(createLogger(levelFromEnv(process.env)));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' }, check: { type: 'boolean' } },
    });
  } catch (e) {
    process.stderr.write(`linkerd-tcp: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`linkerd-tcp: expected exactly one config path, got ${positionals.length}\n\n${USAGE}`);
    return 2;
  }
  const badLevel = levelProblem(process.env);
  if (badLevel) {
    process.stderr.write(`linkerd-tcp: ${badLevel}\n`);
    return 1;
  }
  let config: Config;
  try {
    config = loadConfig(positionals[0]!);
  } catch (e) {
    return fail(e);
  }
  if (values.check) {
    const report = await describeConfig(config, positionals[0]!);
    process.stdout.write(report);
    return report.includes('\nerror: ') ? 1 : 0;
  }
  const n = workerCount(config);
  if (n > 1) {
    try {
      return await runPrimary(config, n, createLogger(levelFromEnv(process.env)));
    } catch (e) {
      return fail(e);
    }
  }
  return run(config);
}

async function run(config: Config): Promise<number> {
  const log = createLogger(levelFromEnv(process.env));
  const exit = Promise.withResolvers<number>();
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) {
      if (why === 'admin') return; // a repeated POST /shutdown does not escalate; a second signal does
      log.warn({ signal: why }, 'second signal: exiting now');
      exit.resolve(1);
      return;
    }
    stopping = true;
    log.info({ signal: why, graceSecs: config.admin.graceSecs }, 'shutting down');
    app.close(config.admin.graceSecs * 1000).then(() => exit.resolve(0), () => exit.resolve(1));
  };
  const app = new App(config, log, {
    shutdown: () => stop('admin'),
    abort: () => {
      log.warn({}, 'abort requested: exiting now');
      exit.resolve(1);
    },
  });
  try {
    await app.start();
  } catch (e) {
    return fail(e);
  }
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => app.reloadTls('SIGHUP'));
  return exit.promise;
}

/** Prints an expected error (no stack trace) and returns exit code 1. */
function fail(e: unknown): number {
  if (e instanceof LinkerdTcpError) {
    process.stderr.write(`linkerd-tcp: ${e.message}\n`);
    return 1;
  }
  throw e;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`linkerd-tcp: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(70);
  },
);
