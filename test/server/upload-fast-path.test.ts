// The upload fast path (server/upload-fast-path.ts) answers tus requests without Hono's chain, and
// must answer them exactly as Hono's path does: the same bytes on the wire (status line, headers,
// problem bodies), the same request log fields and the same metric labels, for good requests and a
// table of bad ones. Two servers, one per path, get the same requests in the same order.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { b64 } from '../helpers/tus.ts';

interface Side {
  server: TestServer;
  lines: Array<Record<string, unknown>>;
  /** Stacks captured when the upload lifecycle logged 'upload.finished' (inside the finishing request). */
  finishStacks: string[];
}

async function startSide(uploadFastPath: boolean): Promise<Side> {
  const lines: Array<Record<string, unknown>> = [];
  const finishStacks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const line = JSON.parse(chunk.toString()) as Record<string, unknown>;
      lines.push(line);
      done();
    },
  });
  const log = pino({ level: 'info' }, {
    write(text: string) {
      if (text.includes('"upload.finished"')) {
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 200;
        finishStacks.push(new Error('stack').stack ?? '');
        Error.stackTraceLimit = limit;
      }
      sink.write(text);
    },
  });
  const server = await startTestServer({ log, uploadFastPath, env: { RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '2' } });
  return { server, lines, finishStacks };
}

/** One raw HTTP/1.1 exchange on its own connection, as the client's socket sees it. */
function exchange(base: string, head: string, body = ''): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(`${head.trim().split('\n').map((line) => line.trim()).join('\r\n')}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

/** What differs between two servers for reasons other than the path taken: time, port, random ids. */
function normalized(text: string, base: string): string {
  const ids = new Map<string, string>();
  return text
    .replaceAll(new URL(base).host, 'HOST')
    .replace(/^(Date|Upload-Expires): .*$/gim, '$1: <time>')
    .replace(/^(Retry-After): \d+$/gim, '$1: <seconds>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<iso-time>')
    .replace(/"(created_at|updated_at|expires_at)":\d+/g, '"$1":<time>')
    .replace(/[0-9a-f]{32}/g, (id) => {
      if (!ids.has(id)) ids.set(id, `<id${ids.size}>`);
      return ids.get(id)!;
    });
}

const SERVICE = 'X-Service-Token: test-service-token-0123456789abcdef';
const TUS = 'Tus-Resumable: 1.0.0';
const META = `Upload-Metadata: filename ${b64('a.txt')},user_id ${b64('ann')}`;

/** The same requests, in the same order, against one side; the transcript of each. */
async function conversation(side: Side): Promise<string[]> {
  const base = side.server.url;
  const cookie = `Cookie: sl_token=${await side.server.token('ann')}`;
  const said: string[] = [];
  let n = 0;
  const say = async (head: string, body = '') => {
    n += 1;
    const answer = await exchange(base, `${head}\nX-Request-Id: r-${n}`, body);
    said.push(normalized(`#${n} ${head.split("\n")[0]}\n${answer}`, base));
    return answer;
  };
  const locationOf = (answer: string) => new URL(/^Location: (.*)$/im.exec(answer)![1]!.trim()).pathname;

  await say(`OPTIONS /v1/uploads HTTP/1.1\n${TUS}`);
  await say(`POST /v1/uploads HTTP/1.1\n${TUS}\nUpload-Length: 5`);
  await say(`POST /v1/uploads HTTP/1.1\n${TUS}\nUpload-Length: 5\nAuthorization: Basic eA==`);
  await say(`POST /v1/uploads HTTP/1.1\n${SERVICE}\nUpload-Length: 5\n${META}`);
  await say(`POST /v1/uploads HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Length: 18014398509481984\n${META}`);
  await say(`POST /v1/uploads HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Length: 5\nUpload-Metadata: filename`);
  const upload = locationOf(await say(`POST /v1/uploads HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Length: 5\n${META}`));
  await say(`HEAD ${upload} HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD ${upload} HTTP/1.1\n${SERVICE}\nTus-Resumable: 0.2.2`);
  await say(`PATCH ${upload} HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Offset: 1\nContent-Type: application/offset+octet-stream`, 'he');
  await say(`PATCH ${upload} HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Offset: 0\nContent-Type: text/plain`, 'he');
  await say(`PATCH ${upload} HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Offset: 18014398509481984\nContent-Type: application/offset+octet-stream`, 'he');
  await say(`PATCH ${upload} HTTP/1.1\n${cookie}\nOrigin: https://evil.example\n${TUS}\nUpload-Offset: 0\nContent-Type: application/offset+octet-stream`, 'he');
  await say(`POST ${upload} HTTP/1.1\n${cookie}\nSec-Fetch-Site: cross-site\nX-HTTP-Method-Override: DELETE\n${TUS}`);
  await say(`PATCH ${upload} HTTP/1.1\n${cookie}\n${TUS}\nUpload-Offset: 0\nContent-Type: application/offset+octet-stream`, 'he');
  await say(`GET ${upload} HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`POST ${upload} HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`PUT ${upload} HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD /v1/uploads/00000000000000000000000000000000 HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD /v1/uploads/not!an-id HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD /v1/uploads/a%2Fb HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD /v1/uploads/a/b HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD /v1/uploads/ HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`PATCH ${upload} HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Offset: 2\nContent-Type: application/offset+octet-stream`, 'llo');
  await say(`HEAD ${upload} HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`PATCH ${upload} HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Offset: 5\nContent-Type: application/offset+octet-stream`, '');
  await say(`POST /v1/uploads HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Length: 5\n${META}\nContent-Type: application/offset+octet-stream`, 'hello');
  const doomed = locationOf(await say(`POST /v1/uploads HTTP/1.1\n${SERVICE}\n${TUS}\nUpload-Length: 9\n${META}`));
  await say(`DELETE ${doomed} HTTP/1.1\n${SERVICE}\n${TUS}`);
  await say(`HEAD ${doomed} HTTP/1.1\n${SERVICE}\n${TUS}`);
  // Relayed (not local), so the auth-failure limit counts it: two failures, then 429.
  for (let i = 0; i < 3; i++) await say(`POST /v1/uploads HTTP/1.1\nX-Forwarded-For: 203.0.113.9\nAuthorization: Bearer nope\n${TUS}\nUpload-Length: 5`);
  return said;
}

const LOGGED = ['request_id', 'method', 'route', 'path', 'status', 'user', 'client', 'via_edge', 'aborted'] as const;

describe('the upload fast path answers as Hono does', () => {
  let fast: Side;
  let hono: Side;
  before(async () => {
    fast = await startSide(true);
    hono = await startSide(false);
  });
  after(async () => {
    await fast?.server.stop();
    await hono?.server.stop();
  });

  test('the same bytes, log fields and metric labels for a table of good and bad requests', async () => {
    const viaFast = await conversation(fast);
    const viaHono = await conversation(hono);
    assert.equal(viaFast.length, viaHono.length);
    for (let i = 0; i < viaHono.length; i++) assert.equal(viaFast[i], viaHono[i]);

    const requestLines = (side: Side) => side.lines
      .filter((line) => line.msg === 'request' && String(line.request_id).startsWith('r-'))
      .map((line) => normalized(JSON.stringify(Object.fromEntries(LOGGED.map((key) => [key, line[key]]))), side.server.url))
      .sort();
    assert.equal(requestLines(fast).length, viaHono.length);
    assert.deepEqual(requestLines(fast), requestLines(hono));
    const failures = (side: Side) => side.lines.filter((line) => line.msg === 'request failed').map((line) => normalized(String(line.path), side.server.url));
    assert.deepEqual(failures(fast), failures(hono));

    const counted = async (side: Side) => (await (await fetch(`${side.server.url}/metrics`)).text())
      .split('\n')
      .filter((line) => /^sl_(http_requests_total|rate_limited_total|uploads_receiving|uploads_total)/.test(line) && !line.includes('route="/metrics"'));
    assert.deepEqual(await counted(fast), await counted(hono));
  });

  test('a request through the fast path has none of Hono\'s middleware frames under it', () => {
    // Each layer awaiting next() stays alive while an upload's body streams (bench/README.md,
    // "The upload fast path"); the finishing request's async stack shows whether any is there.
    assert.ok(hono.finishStacks.length > 0 && fast.finishStacks.length > 0, 'uploads finished on both sides');
    assert.ok(hono.finishStacks.every((stack) => stack.includes('compose')), 'the Hono side runs inside compose');
    for (const stack of fast.finishStacks) assert.ok(!stack.includes('compose') && !stack.includes('hono-base'), stack);
  });

  test('while tus handles an upload request, one frame of ours waits for it: the route\'s answer', () => {
    // Every async frame suspended above tus's handler lives as long as the body streams (bench/README.md,
    // "Objects instead of closures on a held PATCH"): the route's checks and the upload service's
    // run have ended by then.
    for (const stack of fast.finishStacks) {
      const frames = stack.split('\n').flatMap((line) => /^\s+at async (\S+)/.exec(line)?.[1] ?? []);
      const handler = frames.indexOf('Server.handler');
      const adapter = frames.indexOf('responseViaResponseObject');
      assert.ok(handler >= 0 && adapter > handler, stack);
      assert.deepEqual(frames.slice(handler + 1, adapter), ['served'], stack);
    }
  });
});
