// The byte pump: each direction is a stream pipe (backpressure: a full writer pauses its
// reader), and a reader's EOF becomes the writer's FIN while the other direction keeps
// flowing (both sockets are allowHalfOpen). No per-chunk work of ours: Node's pipe
// moves the buffers; byte counts come from the sockets' own counters.
import type { Socket } from 'node:net';

/** Starts pumping both ways. Errors and closes are the caller's listeners' business. */
export function pump(client: Socket, backend: Socket): void {
  client.pipe(backend); // client EOF → backend.end() (FIN), the reverse direction untouched
  backend.pipe(client);
}
