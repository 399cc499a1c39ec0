import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLine, formatProblem, levelFromEnv, levelProblem } from './log.ts';

describe('levelFromEnv', () => {
  const table: [Record<string, string>, string][] = [
    [{}, 'info'],
    [{ LOG_LEVEL: 'debug' }, 'debug'],
    [{ LOG_LEVEL: 'WARN' }, 'warn'],
    [{ RUST_LOG: 'linkerd_tcp=info' }, 'info'],
    [{ RUST_LOG: 'trace' }, 'trace'],
    [{ RUST_LOG: 'tokio=warn,linkerd_tcp=debug' }, 'debug'],
    [{ RUST_LOG: 'linkerd_tcp=debug', LOG_LEVEL: 'error' }, 'error'],
    [{ LOG_LEVEL: 'loud' }, 'info'],
  ];
  for (const [env, want] of table) it(`${JSON.stringify(env)} → ${want}`, () => assert.equal(levelFromEnv(env), want));
});

describe('formatLine (terminal logs)', () => {
  it('renders time, level, message and fields', () => {
    const line = formatLine('{"level":30,"time":"2026-11-22T18:00:00.123Z","pid":1,"rt":"default","endpoint":"127.0.0.1:80","msg":"endpoint added","n":2,"why":"a b"}');
    assert.equal(line, '18:00:00.123 INFO  endpoint added  rt=default endpoint=127.0.0.1:80 n=2 why="a b"');
  });
  it('passes through what is not JSON', () => assert.equal(formatLine('plain'), 'plain'));
  it('escapes control and bidi characters in the message and every field', () => {
    const line = formatLine(JSON.stringify({ level: 30, time: '2026-11-22T18:00:00.123Z', msg: 'bad\u001b[2J', sni: 'x\u001b]0;OWNED\u0007\u001b[31m.example', why: 'a \u202e b\u009b', n: 1 }));
    assert.equal(line, '18:00:00.123 INFO  bad\\x1b[2J  sni=x\\x1b]0;OWNED\\x07\\x1b[31m.example why="a \\u202e b\\x9b" n=1');
    assert.equal(formatLine('not json \u001b[31m'), 'not json \\x1b[31m');
  });
});

describe('levelProblem', () => {
  it('accepts unset, empty and known levels in any case', () => {
    for (const v of [undefined, '', 'debug', 'WARN', ' silent ']) assert.equal(levelProblem(v === undefined ? {} : { LOG_LEVEL: v }), undefined);
  });
  it('names LOG_LEVEL, the choices and the bad value', () => {
    assert.equal(levelProblem({ LOG_LEVEL: 'loud' }), 'LOG_LEVEL: expected one of trace|debug|info|warn|error|fatal|silent, got "loud"');
  });
});

describe('formatProblem', () => {
  it('accepts unset, empty, json and text in any case', () => {
    for (const v of [undefined, '', 'json', 'TEXT', ' text ']) assert.equal(formatProblem(v === undefined ? {} : { LOG_FORMAT: v }), undefined);
  });
  it('names LOG_FORMAT, the choices and the bad value', () => {
    assert.equal(formatProblem({ LOG_FORMAT: 'xml' }), 'LOG_FORMAT: expected one of json|text, got "xml"');
  });
});
