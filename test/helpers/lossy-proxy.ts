// A reverse proxy that loses responses on their way back, as a mobile network or a proxy timeout
// does: the request reaches the server and is fully handled, and then the client's connection is
// cut instead of the answer being delivered. A node:http server on a free 127.0.0.1 port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LossyProxy {
  url: string;
  /** Where requests are forwarded (settable after the proxy listens: the server needs its URL). */
  target: string;
  /** Drop the next `n` responses that `matches` selects. */
  drop(n: number, matches: (req: http.IncomingMessage, res: http.IncomingMessage) => boolean): void;
  /** Responses dropped so far, as "METHOD path status". */
  readonly dropped: string[];
  close(): Promise<void>;
}

export async function startLossyProxy(): Promise<LossyProxy> {
  let remaining = 0;
  let matches: (req: http.IncomingMessage, res: http.IncomingMessage) => boolean = () => false;
  const dropped: string[] = [];
  const proxy: LossyProxy = {
    url: '',
    target: '',
    drop(n, match) {
      remaining = n;
      matches = match;
    },
    dropped,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? '/', proxy.target);
    const upstream = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
      if (remaining > 0 && matches(req, answer)) {
        remaining--;
        dropped.push(`${req.method} ${req.url} ${answer.statusCode}`);
        answer.resume();
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
