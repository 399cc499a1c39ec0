// TLS session-ticket keys for several workers: the primary makes them (48 random bytes, as
// Node's setTicketKeys takes), hands them to every worker over IPC, and replaces them every
// `rotateMs`, so a client resumes its session whichever worker accepts its next connection.
// Node keeps one key set per server (no previous key for decryption): tickets older than
// a rotation fall back to a full handshake. The keys are never logged.
import { randomBytes } from 'node:crypto';

export const TICKET_KEY_BYTES = 48;
export const TICKET_ROTATE_MS = 12 * 60 * 60 * 1000;

export class TicketKeys {
  private keys: Buffer;
  private readonly random: (n: number) => Buffer;
  private timer: NodeJS.Timeout | undefined;

  constructor(random: (n: number) => Buffer = randomBytes) {
    this.random = random;
    this.keys = random(TICKET_KEY_BYTES);
  }

  /** The keys in use now (for a worker that starts). */
  get current(): Buffer {
    return this.keys;
  }

  /** New keys now; returns them. */
  rotate(): Buffer {
    this.keys = this.random(TICKET_KEY_BYTES);
    return this.keys;
  }

  /** Rotates every `everyMs` and hands each new set to `onRotate` (which sends it to the workers). */
  start(onRotate: (keys: Buffer) => void, everyMs = TICKET_ROTATE_MS): void {
    this.timer = setInterval(() => onRotate(this.rotate()), everyMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
