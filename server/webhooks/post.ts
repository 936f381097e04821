// One webhook delivery on the wire: a POST of the event's JSON over node:http(s), on connections
// kept alive per receiver, answering the response's status. A redirect is an answer like any
// other (node:http never follows one): a receiver that moved is told apart from one that took the
// event. Each delivery is its own request: one event per POST, as receivers expect.
//
// node:http rather than fetch: per delivery fetch cost ~3× the CPU of a keep-alive http.request
// (web streams, Headers, a Response and its body per event; figures in bench/README.md, "Figures
// behind choices in the code"), and a small upload with webhooks on makes three deliveries.
import http from 'node:http';
import https from 'node:https';

export interface Poster {
  /** The receiver's status. Rejects when no answer came (refused, reset, aborted by `signal`). */
  post(target: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<number>;
  /** Closes the idle kept-alive connections. */
  close(): void;
}

export function createPoster(options: { timeoutMs: number }): Poster {
  // No cap on sockets per origin: the dispatcher caps requests per URL, and two URLs on one origin
  // keep separate lanes (one that hangs must not queue the other's requests behind it here).
  const agents = {
    'http:': new http.Agent({ keepAlive: true }),
    'https:': new https.Agent({ keepAlive: true }),
  };
  return {
    post(target, headers, body, signal) {
      return new Promise((resolve, reject) => {
        const url = new URL(target);
        const transport = url.protocol === 'https:' ? https : http;
        const request = transport.request(
          url,
          { method: 'POST', agent: agents[url.protocol as keyof typeof agents], headers: { ...headers, 'Content-Length': Buffer.byteLength(body) }, signal },
          (response) => {
            resolve(response.statusCode ?? 0);
            // The answer's body is not read, only drained so the connection serves the next
            // delivery; one that never ends is cut rather than holding a connection for good.
            const stalled = setTimeout(() => response.destroy(), options.timeoutMs);
            stalled.unref();
            response.once('close', () => clearTimeout(stalled));
            response.on('error', () => {});
            response.resume();
          },
        );
        request.once('error', reject);
        request.end(body);
      });
    },
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}
