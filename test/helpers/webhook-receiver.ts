// A real webhook receiver for tests: a node:http server on 127.0.0.1 that records every POST with
// its Standard Webhooks headers and answers `status` — or holds the request unanswered (`hang`),
// or is not listening at all (close(), then listen() again on the same port).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  authorization: string | undefined;
  /** The path and query the request was sent to. */
  path: string;
  raw: string;
  type: string;
  data: Record<string, unknown>;
  /** The status this receiver answered (0: held unanswered). */
  answered: number;
}

export class Receiver {
  readonly requests: Received[] = [];
  status = 204;
  /** Hold requests unanswered until the connection is closed (a receiver that hangs). */
  hang = false;
  /** Hold only the requests to this path (two receivers on one origin, one of them hanging). */
  hangPath: string | undefined;
  port = 0;
  #server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (c: string) => (raw += c)).on('end', () => {
      const body = JSON.parse(raw) as { type: string; data: Record<string, unknown> };
      const held = this.hang || (this.hangPath !== undefined && req.url === this.hangPath);
      this.requests.push({
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        authorization: req.headers.authorization,
        path: req.url ?? '',
        raw,
        type: body.type,
        data: body.data,
        answered: held ? 0 : this.status,
      });
      if (!held) res.writeHead(this.status).end();
    });
  });

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }
  /** Connection refused from now on (the same port is taken again by listen()). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  /** Deliveries this receiver accepted, in arrival order. */
  accepted(): Received[] {
    return this.requests.filter((r) => r.answered >= 200 && r.answered < 300);
  }
  forUpload(uploadId: string): Received[] {
    return this.accepted().filter((r) => r.data.upload_id === uploadId);
  }
}

/** One sample of a metric from a server's /metrics (0 when absent). */
export async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** The upload id inside a file key (`users/<u>/<y>/<m>/<d>/<upload_id>.<ext>`). */
export function uploadIdOf(key: string): string {
  return /\/([0-9a-f]{32})(\.[a-z0-9]+)?$/.exec(key)![1]!;
}
