import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A proxy in front of an http worker that holds every `stop` call (an agent's worker slow to save
 * its state, or stuck) until `hold()` settles, then passes it on; every other call passes at once.
 * `waiting()`: the stop calls held now whose caller still waits on the answer.
 */
export async function stopHoldingProxy(workerUrl: string, hold: () => Promise<unknown>, onStop?: () => void) {
  let waiting = 0;
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      if ((JSON.parse(body.toString()) as { type?: string }).type === 'stop') {
        onStop?.();
        waiting++;
        res.once('close', () => waiting--);
        await hold();
      }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => ['content-type', 'agent-signature', 'idempotency-key'].includes(name))) as Record<string, string>;
      // The worker may be gone by now (its test or benchmark ended while a call was held).
      const answer = await fetch(`${workerUrl}${req.url}`, { method: 'POST', headers, body }).catch(() => undefined);
      if (!answer) return void res.destroy();
      res.writeHead(answer.status, { 'content-type': 'application/json', 'agent-signature': answer.headers.get('agent-signature') ?? '' }).end(await answer.text());
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    waiting: () => waiting,
    close: () => {
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}
