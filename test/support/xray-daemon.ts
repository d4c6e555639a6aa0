import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

/** A segment or subsegment document as the X-Ray SDK sends it to the daemon. */
export interface TraceDocument {
  id: string;
  name: string;
  trace_id: string;
  parent_id?: string;
  type?: 'subsegment';
  namespace?: 'aws' | 'remote';
  start_time: number;
  end_time?: number;
  error?: boolean;
  fault?: boolean;
  annotations?: Record<string, string | number | boolean>;
  metadata?: Record<string, unknown>;
  aws?: Record<string, unknown>;
  http?: { request?: { url?: string; method?: string }; response?: { status?: number } };
  subsegments?: TraceDocument[];
}

/**
 * The X-Ray daemon's side of the wire, on loopback: the SDK sends each document over UDP (a JSON
 * header line, then the document), and in Lambda each subsegment as soon as it closes. What the
 * functions trace is read here as X-Ray would receive it.
 */
export class XRayDaemon {
  private readonly socket: Socket = createSocket('udp4');
  readonly raw: string[] = [];
  private readonly docs: TraceDocument[] = [];

  async start(): Promise<this> {
    this.socket.on('message', (packet) => {
      const text = packet.toString('utf8');
      this.raw.push(text);
      const body = text.slice(text.indexOf('\n') + 1);
      this.docs.push(JSON.parse(body) as TraceDocument);
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return this;
  }

  get address(): string {
    const { address, port } = this.socket.address();
    return `${address}:${port}`;
  }

  /** Every document of one trace, subsegment trees flattened. */
  trace(traceId: string): TraceDocument[] {
    const flat: TraceDocument[] = [];
    const visit = (doc: TraceDocument, parent?: string) => {
      flat.push({ ...doc, parent_id: doc.parent_id ?? parent });
      for (const sub of doc.subsegments ?? []) visit(sub, doc.id);
    };
    for (const doc of this.docs.filter((d) => d.trace_id === traceId)) visit(doc);
    return flat;
  }

  stop(): void {
    this.socket.close();
  }
}

/** A new trace: its root id, and the header Lambda gives an invocation it samples. */
export function newTrace(): { traceId: string; header: string } {
  const traceId = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
  return { traceId, header: `Root=${traceId};Parent=${randomBytes(8).toString('hex')};Sampled=1` };
}
