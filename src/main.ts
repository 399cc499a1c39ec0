// The entry point (`node dist/main.js`, `node src/main.ts`, bin/linkerd-tcp.js): checks the
// Node.js version before anything else loads, so an old Node prints one line instead of a
// SyntaxError from a missing builtin export, then runs the CLI (cli.ts). Kept to syntax
// that Node 20 parses once compiled. Then, before the CLI's modules load, it holds SIGINT,
// SIGTERM and SIGHUP (signals.ts), so a stop asked for while starting is kept, not fatal.
// The old-Node line gives the exact command that runs the checkout's Node 24 (the same line
// as bin/linkerd-tcp.js's): `npm ci` installs it in node_modules/.bin, not on PATH.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const node = `${root}node_modules/.bin/node`;
  const q = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const args = process.argv.length > 2 ? process.argv.slice(2).map(q) : ['<config>'];
  const cmd = [q(node), q(`${root}bin/linkerd-tcp.js`), ...args].join(' ');
  process.stderr.write(`linkerd-tcp: Node.js >= 24 is needed, this is ${process.version}; ${existsSync(node)
    ? `run it with the Node 24 that \`npm ci\` installed: ${cmd}`
    : `\`npm ci\` in ${root} installs Node 24 there, then run: ${cmd}`}\n`);
  process.exit(1);
}
(await import('./signals.ts')).holdSignals();
await import('./cli.ts');
