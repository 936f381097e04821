// Requests node:http refuses before any route (server/http/client-error.ts): headers past its size
// limit and bytes that are not HTTP get a problem+json with a stable code instead of a bare status
// line, over a raw socket to a real server, which keeps serving. The headers timeout (60 s on the
// server) is shown on a node:http server of its own with a 0.5 s timeout and the same listener.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { answerClientError } from '../../../server/http/client-error.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { metadataHeader } from '../../helpers/tus.ts';

/**
 * Writes `request` on a new connection and reads until the server closes it. A server that closes
 * with request bytes still unread makes the kernel reset the connection: what arrived before the
 * reset is the answer.
 */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error) => (chunks.length > 0 ? undefined : reject(error)));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.end(request);
  });
}

function parse(raw: string): { status: number; headers: Map<string, string>; body: Record<string, unknown> } {
  const [head, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body) };
}

describe('requests node:http refuses before any route', () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startTestServer();
    port = Number(new URL(server.url).port);
  });
  after(() => server.stop());

  test('an Upload-Metadata past the header limit: 431 headers_too_large as problem+json; the server keeps serving', async () => {
    const metadata = metadataHeader({ filename: 'big.txt', note: 'x'.repeat(20_000) });
    const raw = await exchange(port, `POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 3\r\nUpload-Metadata: ${metadata}\r\n\r\n`);
    const answer = parse(raw);
    assert.equal(answer.status, 431);
    assert.equal(answer.headers.get('content-type'), 'application/problem+json');
    assert.equal(answer.headers.get('tus-resumable'), '1.0.0');
    assert.equal(answer.headers.get('connection'), 'close');
    assert.equal(answer.body.code, 'headers_too_large');
    assert.equal(answer.body.status, 431);
    assert.equal((await fetch(`${server.url}/healthz/live`)).status, 200);
  });

  test('bytes that are not HTTP: 400 bad_request as problem+json', async () => {
    const answer = parse(await exchange(port, 'HELLO THERE\r\n\r\n'));
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 'bad_request');
    assert.equal((await fetch(`${server.url}/healthz/live`)).status, 200);
  });

  test('headers that do not all arrive in time: 408 request_timeout', async () => {
    const slow = http.createServer({ headersTimeout: 500, requestTimeout: 0, connectionsCheckingInterval: 100 }, (_req, res) => res.end());
    slow.on('clientError', answerClientError);
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      // The request line and one header, then nothing: the client waits for the server to close.
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = net.connect((slow.address() as AddressInfo).port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', (error) => (chunks.length > 0 ? undefined : reject(error)));
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      });
      const answer = parse(raw);
      assert.equal(answer.status, 408);
      assert.equal(answer.body.code, 'request_timeout');
    } finally {
      slow.close();
    }
  });
});
