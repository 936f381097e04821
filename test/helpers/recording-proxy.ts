// An HTTP proxy on 127.0.0.1 in front of a real server, as an operator or a network puts one: it
// forwards every request (Host set to the server's, as nginx does by default) and streams both ways.
// A test can
//  - see what a client library sent (`requests`: tus-js-client makes its own requests, out of
//    reach of a custom fetch);
//  - add headers as a reverse proxy does (`addHeaders`: nginx, HAProxy…);
//  - lose answers on their way back (`drop`), as a mobile network or a proxy timeout does: the
//    request reaches the server and is fully handled, and then the client's connection is cut
//    instead of the answer being delivered.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

type Matcher = (req: http.IncomingMessage, res: http.IncomingMessage) => boolean;

export interface RecordingProxy {
  url: string;
  /** Where requests are forwarded (settable after the proxy listens: the server may need its URL). */
  target: string;
  /** Every request received, in order, as the client sent it. */
  readonly requests: RecordedRequest[];
  /** Drop the next `n` responses that `matches` selects. */
  drop(n: number, matches: Matcher): void;
  /** Responses dropped so far, as "METHOD path status". */
  readonly dropped: string[];
  close(): Promise<void>;
}

export async function startRecordingProxy(options: {
  target?: string;
  addHeaders?: (req: http.IncomingMessage) => Record<string, string>;
} = {}): Promise<RecordingProxy> {
  let remaining = 0;
  let matches: Matcher = () => false;
  const proxy: RecordingProxy = {
    url: '',
    target: options.target ?? '',
    requests: [],
    drop(n, match) {
      remaining = n;
      matches = match;
    },
    dropped: [],
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = http.createServer((req, res) => {
    proxy.requests.push({ method: req.method!, path: req.url!, headers: req.headers });
    const target = new URL(req.url ?? '/', proxy.target);
    const headers = { ...req.headers, host: target.host, ...options.addHeaders?.(req) };
    const upstream = http.request(target, { method: req.method, headers }, (answer) => {
      if (remaining > 0 && matches(req, answer)) {
        remaining--;
        proxy.dropped.push(`${req.method} ${req.url} ${answer.statusCode}`);
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
