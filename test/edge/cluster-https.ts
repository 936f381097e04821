// Requests through Caddy's HTTPS (tls internal) for the several-instances tests: each carries an
// X-Request-Id of the test's own, which the instance that served it writes into its access log
// line (server/http/request-context.ts), so the test can tell which instance that was without any
// header added for it. Bodies may stream (an async iterable), paused where the test says.
import https from 'node:https';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';

export interface EdgeClient {
  /** One request; the answer as a fetch Response (for expectProblem), with the id it was sent with. */
  request(url: string, init?: EdgeRequestInit): Promise<EdgeResponse>;
  /** A tus-js-client HTTP stack trusting Caddy's CA. */
  tusStack(): tus.HttpStack;
  close(): void;
}

export interface EdgeRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | AsyncIterable<Buffer>;
  /** The X-Request-Id to send; a fresh one by default. */
  requestId?: string;
}

export interface EdgeResponse extends Response {
  requestId: string;
}

let sequence = 0;
/** A request id unique in this process, readable in an instance's log. */
export function newRequestId(prefix: string): string {
  return `${prefix}-${process.pid}-${++sequence}`;
}

export function edgeClient(ca: string): EdgeClient {
  const agent = new https.Agent({ ca, keepAlive: true });
  return {
    request(url, init = {}) {
      const requestId = init.requestId ?? newRequestId('req');
      return new Promise<EdgeResponse>((resolve, reject) => {
        const req = https.request(url, { method: init.method ?? 'GET', headers: { ...init.headers, 'X-Request-Id': requestId }, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
            }
            const status = res.statusCode!;
            const body = status === 204 || status === 304 || chunks.length === 0 ? null : Buffer.concat(chunks);
            resolve(Object.assign(new Response(body, { status, headers }), { requestId }));
          });
        });
        req.on('error', reject);
        const body = init.body;
        if (body === undefined) req.end();
        else if (Buffer.isBuffer(body)) req.end(body);
        else {
          // A body the server stopped reading (it answered early) ends the pipe with an error the
          // answer already explains.
          Readable.from(body).on('error', () => req.destroy()).pipe(req).on('error', () => {});
        }
      });
    },
    tusStack: () => new tus.DefaultHttpStack({ agent }),
    close: () => agent.destroy(),
  };
}
