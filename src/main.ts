// The entry point (`node dist/main.js`, `node src/main.ts`, bin/linkerd-tcp.js): checks the
// Node.js version before anything else loads, so an old Node prints one line instead of a
// SyntaxError from a missing builtin export, then runs the CLI (cli.ts). Kept to syntax
// that Node 20 parses once compiled. Then, before the CLI's modules load, it holds SIGINT,
// SIGTERM and SIGHUP (signals.ts), so a stop asked for while starting is kept, not fatal.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`linkerd-tcp: Node.js >= 24 is needed, this is ${process.version}; \`npm ci\` in the linkerd-tcp checkout installs it (then \`npm start\` or \`npx linkerd-tcp <config>\`)\n`);
  process.exit(1);
}
(await import('./signals.ts')).holdSignals();
await import('./cli.ts');
