// The test's side of a proxied exchange and of a scrape: one round trip through a port (send,
// half-close, read until the peer closes) and the value of one exact metric line. Shared by
// the integration tests so each reads the same way.
import { once } from 'node:events';
import { connect } from 'node:net';
import { deadline, peerClosed } from './harness.ts';

/** Connects to 127.0.0.1:port, sends `msg`, half-closes and returns all it got until the peer closed. */
export async function roundTrip(port: number, msg: string): Promise<string> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  await deadline(5000, 'client connect', once(s, 'connect'));
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.end(msg);
  await deadline(5000, 'round trip', peerClosed(s));
  return Buffer.concat(chunks).toString();
}

/** The value of one exact metric line (name plus rendered labels), or undefined. */
export function metric(text: string, nameAndLabels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(nameAndLabels + ' '));
  return line === undefined ? undefined : Number(line.slice(nameAndLabels.length + 1));
}
