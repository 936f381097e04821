// An HTTP relay on 127.0.0.1 in front of a real S3 server (Swift) that a test can make answer every
// request `503 SlowDown`, as S3 does when it throttles a prefix or a service is overloaded. Requests
// pass unchanged otherwise (the Host header too, so SigV4 signatures still match).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Throttle {
  /** `http://127.0.0.1:<port>` */
  url: string;
  throttled: boolean;
  close(): Promise<void>;
}

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function startS3Throttle(target: URL): Promise<S3Throttle> {
  const relay: S3Throttle = { url: '', throttled: false, close: async () => {} };
  const server = http.createServer((req, res) => {
    if (relay.throttled) {
      req.resume();
      res.writeHead(503, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(SLOW_DOWN) }).end(SLOW_DOWN);
      return;
    }
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  relay.close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return relay;
}
