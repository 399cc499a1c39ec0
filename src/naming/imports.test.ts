// naming/ has no import cycle: types.ts imports nothing, parser.ts only types (and the
// error catalogue), and the printers, dtab lookup and binding sit above them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';

const DIR = new URL('./', import.meta.url).pathname;

it('naming/ modules import each other without a cycle', () => {
  const graph = new Map<string, string[]>();
  for (const f of readdirSync(DIR).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    const deps = [...readFileSync(DIR + f, 'utf8').matchAll(/^(?:import|export)[^'"]*from '\.\/([^'/]+)'/gm)].map((m) => m[1]!);
    graph.set(f, deps);
  }
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]): void => {
    if (stack.includes(f)) {
      cycles.push([...stack.slice(stack.indexOf(f)), f].join(' → '));
      return;
    }
    for (const d of graph.get(f) ?? []) visit(d, [...stack, f]);
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual([...new Set(cycles)], []);
  assert.deepEqual(graph.get('types.ts'), [], 'types.ts imports nothing');
});
