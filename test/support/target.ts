import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server on loopback that must never be called: it counts every request it gets. */
export async function forbiddenTarget() {
  let hits = 0;
  const server = createServer((_, res) => {
    hits++;
    res.end('{"reply":"should never be asked"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: () => (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
