#!/usr/bin/env node
// Entry point for `npx linkerd-tcp`: Node 24 runs the TypeScript sources directly.
import '../src/main.ts';
