// Reads a config file (or stdin for `-`), parses JSON when the text starts with `{` (as
// linkerd-tcp does) and YAML otherwise, then decodes it. All failures are LinkerdTcpError
// with the file named; callers print the message, never a stack trace.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { LinkerdTcpError } from '../errors.ts';
import { configError, decodeConfig } from './schema.ts';
import type { Config } from './types.ts';

/** The YAML parser, loaded on first use: JSON configs and worker processes (which get the
 * decoded config from the primary) never pay its ~13 MiB of memory. */
function yaml(): typeof import('yaml') {
  return createRequire(import.meta.url)('yaml') as typeof import('yaml');
}

/** Parses and decodes config text; `file` names it in messages. */
export function parseConfig(text: string, file: string): Config {
  let doc: unknown;
  if (text.trimStart().startsWith('{')) {
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new LinkerdTcpError('CONFIG_UNREADABLE', `${file}: invalid JSON: ${(e as Error).message}`, { cause: e });
    }
  } else {
    const parsed = yaml().parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    if (parsed.errors.length) {
      const first = parsed.errors.map((e) => e.message.split('\n')[0]).join('; ');
      throw new LinkerdTcpError('CONFIG_UNREADABLE', `${file}: invalid YAML: ${first}`);
    }
    try {
      // Aliases are expanded here; a document that multiplies them (an "alias bomb") is refused.
      doc = parsed.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new LinkerdTcpError('CONFIG_UNREADABLE', `${file}: invalid YAML: ${(e as Error).message}`, { cause: e });
    }
  }
  if (doc === null || doc === undefined) {
    throw new LinkerdTcpError('CONFIG_UNREADABLE', `${file}: the config is empty`);
  }
  const r = decodeConfig(doc);
  if ('problems' in r) throw configError(file, r.problems);
  return r.config;
}

/** Reads `path` (`-` = stdin) and parses it. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new LinkerdTcpError('CONFIG_UNREADABLE', `${path}: cannot read config: ${why}`, { cause: e });
  }
  return parseConfig(text, path === '-' ? '<stdin>' : path);
}
