#!/usr/bin/env node
// Entry point (`node_modules/.bin/node bin/linkerd-tcp.js <config>`, `npx linkerd-tcp`): the
// compiled build (`npm run build`, run by `npm ci`) when present, else the TypeScript sources
// through Node 24's type stripping. Plain JavaScript that any Node parses, so an old Node (the
// host's, through the shebang) gets one line with the command that runs the checkout's Node 24,
// not a SyntaxError. The same line as src/main.ts's (this file cannot import TypeScript).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const node = `${root}node_modules/.bin/node`;
  const q = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const args = process.argv.length > 2 ? process.argv.slice(2).map(q) : ['<config>'];
  const cmd = [q(node), q(`${root}bin/linkerd-tcp.js`), ...args].join(' ');
  process.stderr.write(`linkerd-tcp: Node.js >= 24 is needed, this is ${process.version}; ${existsSync(node)
    ? `run it with the Node 24 that \`npm ci\` installed: ${cmd}`
    : `\`npm ci\` in ${root} installs Node 24 there, then run: ${cmd}`}\n`);
  process.exit(1);
}
const built = new URL('../dist/main.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/main.ts', import.meta.url).href);
