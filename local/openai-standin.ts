import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for an OpenAI-compatible chat-completions endpoint, to try the `llm` runtime
 * with no model and no key (`npm run llm:standin`) and to test it: it records every request it
 * receives and answers with a reply naming the last user message (`pad:<n>`: a reply of n bytes);
 * `delayMs` holds answers back, to see a request aborted.
 */
export interface ReceivedRequest {
  model: string;
  messages: { role: string; content: string }[];
  authorization?: string;
  aborted: boolean;
}

export class OpenAiStandIn {
  readonly received: ReceivedRequest[] = [];
  delayMs = 0;
  private server?: Server;
  url = '';

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model: string; messages: ReceivedRequest['messages'] };
        const request: ReceivedRequest = { model: body.model, messages: body.messages, authorization: req.headers.authorization, aborted: false };
        this.received.push(request);
        res.on('close', () => {
          if (!res.writableFinished) request.aborted = true;
        });
        const last = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
        setTimeout(() => {
          if (request.aborted) return;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              id: `chatcmpl-${this.received.length}`,
              object: 'chat.completion',
              created: Math.floor(Date.now() / 1000),
              model: body.model,
              choices: [{ index: 0, message: { role: 'assistant', content: last.startsWith('pad:') ? 'x'.repeat(Number(last.slice(4))) : `reply ${this.received.length} to: ${last}` }, finish_reason: 'stop' }],
              usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
            }),
          );
        }, this.delayMs);
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', resolve);
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
