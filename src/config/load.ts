// Reads a config file (or stdin for `-`), parses JSON when the text starts with `{` (as
// linkerd-tcp does) and YAML otherwise, then decodes it. All failures are LinkerdTcpError
// with the file named; callers print the message, never a stack trace.
import { createRequire } from 'node:module';
import { LinkerdTcpError } from '../errors.ts';
import { readRegularFile, readStdin } from '../regular-file.ts';
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

/** The config file's text (`-` = stdin) through the one file reader; throws LinkerdTcpError naming the file. */
export function readConfigText(path: string): string {
  try {
    return path === '-' ? readStdin() : readRegularFile(path).text;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new LinkerdTcpError('CONFIG_UNREADABLE', `${path}: cannot read config: ${why}`, { cause: e });
  }
}
