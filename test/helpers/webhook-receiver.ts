// A webhook receiver on a port of its own (node:http, port 0), as a team's would be: it verifies
// each delivery's signature, answers `failFirst` requests of each event with a 500 before it
// accepts one (or answers every request with `status`), and records what it got.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verifySignature } from '../../src/notifications/signature.js';

export interface Received {
  key: string;
  event: string;
  body: { id: string; event: string; at: string; text: string; details: Record<string, unknown> };
  verified: boolean;
  status: number;
}

export class WebhookReceiver {
  readonly requests: Received[] = [];
  private server: http.Server | undefined;
  url = '';

  constructor(private readonly opts: { secret: string; failFirst?: number; status?: number }) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const key = String(req.headers[IDEMPOTENCY_HEADER] ?? '');
        const verified = verifySignature(req.headers[SIGNATURE_HEADER] as string | undefined, raw, this.opts.secret, Date.now() / 1000);
        const before = this.requests.filter((r) => r.key === key).length;
        const status = !verified ? 401 : (this.opts.status ?? (before < (this.opts.failFirst ?? 0) ? 500 : 200));
        const body = JSON.parse(raw) as Received['body'];
        this.requests.push({ key, event: body.event, body, verified, status });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'not now');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Deliveries of an event that the receiver accepted. */
  accepted(event?: string): Received[] {
    return this.requests.filter((r) => r.status === 200 && (event === undefined || r.event === event));
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
