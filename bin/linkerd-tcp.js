#!/usr/bin/env node
// Entry point for `npx linkerd-tcp`: the compiled build (`npm run build`, run by `npm ci`)
// when present, else the TypeScript sources through Node 24's type stripping. Plain
// JavaScript that any Node parses, so an old Node gets one clear line, not a SyntaxError.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`linkerd-tcp: Node.js >= 24 is needed, this is ${process.version}; \`npm ci\` in the linkerd-tcp checkout installs it (then \`npm start\` or \`npx linkerd-tcp <config>\`)\n`);
  process.exit(1);
}
const built = new URL('../dist/main.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/main.ts', import.meta.url).href);
