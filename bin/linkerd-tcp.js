#!/usr/bin/env node
// Entry point for `npx linkerd-tcp`: the compiled build (`npm run build`, run by `npm ci`)
// when present, else the TypeScript sources through Node 24's type stripping.
import { existsSync } from 'node:fs';

const built = new URL('../dist/main.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/main.ts', import.meta.url).href);
