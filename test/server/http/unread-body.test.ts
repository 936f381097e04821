// An upload answered before its body was read (413, 409, 401): the rest of the body is read and
// dropped after the answer, so a client (or a proxy) still sending never has its connection reset
// under it, and a body read to its end leaves the connection open for the next request. Bounds: a
// chunked body is read for at most 64 MiB, a silent one for UPLOAD_IDLE_TIMEOUT_SECONDS; then the
// connection closes after the answer, never before it is delivered. Raw sockets: a client library
// would hide when the answer arrived and how the connection ended.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PIECE = Buffer.alloc(64 * KiB, 7);

/** A raw HTTP/1.1 connection: what it received, and how it ended. */
class RawConnection {
  readonly socket: net.Socket;
  received = '';
  ended = false;
  error: NodeJS.ErrnoException | undefined;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => (this.received += text));
    socket.on('end', () => (this.ended = true));
    socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error));
    socket.on('close', () => (this.closed = true));
  }

  static async open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawConnection(socket);
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (error) => (error ? reject(error) : resolve())));
  }

  /** The statuses of the responses received so far, in order (their bodies here never hold a status line). */
  statuses(): number[] {
    return [...this.received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  }

  /** The body of the first response (its Content-Length tells where it ends). */
  firstBody(): string | undefined {
    const head = /^HTTP\/1\.1 \d{3} [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(this.received);
    if (!head) return undefined;
    const length = Number(/^content-length: (\d+)$/im.exec(head[1]!)?.[1]);
    const start = head.index + head[0].length;
    return this.received.length >= start + length ? this.received.slice(start, start + length) : undefined;
  }
}

function requestHead(method: string, path: string, headers: Record<string, string>): string {
  return [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the body of an upload answered before it was read', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer({ env: { MAX_UPLOAD_BYTES: String(MiB), UPLOAD_IDLE_TIMEOUT_SECONDS: '2' } });
    auth = { Authorization: `Bearer ${await server.token('unread')}` };
  });
  after(() => server.stop());

  const TUS = { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream' };
  const refusals: Array<{ name: string; status: number; code: string; request: () => Promise<{ path: string; method: string; headers: Record<string, string> }> }> = [
    {
      name: '413 upload_too_large (creation with upload)',
      status: 413,
      code: 'upload_too_large',
      request: async () => ({ method: 'POST', path: '/v1/uploads', headers: { ...auth, 'Upload-Length': String(3 * MiB) } }),
    },
    {
      name: '409 offset_mismatch (PATCH)',
      status: 409,
      code: 'offset_mismatch',
      request: async () => {
        const location = (await createUpload(server.url, auth, MiB, { filename: 'unread.bin' })).headers.get('location')!;
        return { method: 'PATCH', path: new URL(location).pathname, headers: { ...auth, 'Upload-Offset': '4096' } };
      },
    },
    {
      name: '401 unauthorized (PATCH)',
      status: 401,
      code: 'invalid_token',
      request: async () => ({ method: 'PATCH', path: '/v1/uploads/0123456789abcdef0123456789abcdef', headers: { Authorization: 'Bearer not-a-token', 'Upload-Offset': '0' } }),
    },
  ];

  for (const refusal of refusals) {
    test(`${refusal.name}: the body is read to its end after the answer, then the connection serves the next request or ends cleanly`, async () => {
      const { method, path, headers } = await refusal.request();
      const bodyBytes = 3 * MiB;
      const conn = await RawConnection.open(server.url);
      await conn.write(requestHead(method, path, { ...TUS, ...headers, 'Content-Length': String(bodyBytes) }));
      await conn.write(PIECE);
      await until('the answer, before the body was sent', () => conn.firstBody() !== undefined, 30_000);
      assert.deepEqual(conn.statuses(), [refusal.status]);
      assert.equal(JSON.parse(conn.firstBody()!).code, refusal.code);
      // The rest arrives slowly, as from a phone: longer in all than the adapter's own 500 ms.
      for (let sent = PIECE.length; sent < bodyBytes; sent += PIECE.length) {
        assert.equal(conn.ended, false, `the server closed the connection under the body, ${sent} bytes in`);
        await conn.write(PIECE);
        await pause(15);
      }
      assert.equal(conn.error, undefined, 'the connection was reset while the body was still being sent');
      if (/^connection: close$/im.test(conn.received)) {
        // tus answers its errors with Connection: close: the connection ends once the body is read.
        await until('the server ends the connection', () => conn.ended || conn.closed, 30_000);
        assert.equal(conn.error, undefined);
      } else {
        // Keep-alive: the same connection carries the next request.
        await conn.write(requestHead('GET', '/healthz', {}));
        await until('the next answer on the same connection', () => conn.statuses().length === 2 || conn.closed, 30_000);
        assert.deepEqual(conn.statuses(), [refusal.status, 200]);
      }
      conn.socket.destroy();
    });
  }

  test('a refused chunked body is read for at most 64 MiB, then the connection ends after the answer', async () => {
    const conn = await RawConnection.open(server.url);
    await conn.write(requestHead('POST', '/v1/uploads', { ...TUS, ...auth, 'Upload-Length': String(3 * MiB), 'Transfer-Encoding': 'chunked' }));
    const chunk = Buffer.concat([Buffer.from(`${PIECE.length.toString(16)}\r\n`), PIECE, Buffer.from('\r\n')]);
    let sent = 0;
    // A body that never ends: only the server's bound stops it.
    while (!conn.ended && !conn.closed && sent < 256 * MiB) {
      try {
        await conn.write(chunk);
      } catch {
        break;
      }
      sent += PIECE.length;
    }
    await until('the connection ends', () => conn.ended || conn.closed, 30_000);
    assert.ok(sent >= 64 * MiB && sent < 256 * MiB, `sent ${sent / MiB} MiB before the connection ended`);
    assert.deepEqual(conn.statuses(), [413]);
    assert.equal(JSON.parse(conn.firstBody()!).code, 'upload_too_large');
    conn.socket.destroy();
  });

  test('a client that goes silent after its answer is disconnected', async () => {
    const conn = await RawConnection.open(server.url);
    await conn.write(requestHead('POST', '/v1/uploads', { ...TUS, ...auth, 'Upload-Length': String(3 * MiB), 'Content-Length': String(3 * MiB) }));
    await conn.write(PIECE);
    await until('the answer', () => conn.firstBody() !== undefined, 30_000);
    assert.deepEqual(conn.statuses(), [413]);
    // Not one more byte: the server lets the connection go (its side ends, not a reset).
    await until('the server ends the connection', () => conn.ended || conn.closed, 30_000);
    assert.equal(conn.error, undefined);
    assert.equal(conn.ended, true);
    conn.socket.destroy();
  });
});
