// The clamd client (server/scan/clamd.ts) against a real clamd, over a Unix socket and over TCP:
// INSTREAM framing (a signature split across chunks is still found), the size limit, PING, and
// what is not a verdict (nobody listening, a peer that says nothing, a failing source, an abort).
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ClamdUnavailable, createClamd, parseAnswer, type Clamd } from '../../server/scan/clamd.ts';
import { EICAR, EICAR_SIGNATURE, startClamd, type ClamdServer } from '../support/clamd.ts';

/** `total` bytes of `fill` in chunks of `chunk`, produced as they are read. */
function generated(total: number, chunk: number, fill = 0x41): Readable & { produced(): number } {
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const n = Math.min(chunk, total - produced);
      produced += n;
      this.push(Buffer.alloc(n, fill));
    },
  });
  return Object.assign(stream, { produced: () => produced });
}

for (const transport of ['unix', 'tcp'] as const) {
  describe(`clamd client over ${transport}`, () => {
    let daemon: ClamdServer;
    let clamd: Clamd;
    before(async () => {
      daemon = await startClamd({ streamMaxLength: '1M', tcp: transport === 'tcp' });
      clamd = createClamd({ address: daemon.address, timeoutMs: 30_000 });
    });
    after(() => daemon.remove());

    test('PING answers PONG', async () => {
      assert.equal(await clamd.ping(), true);
    });

    test('clean bytes, an empty stream, and many small chunks are clean', async () => {
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('hello, world\n')])), { kind: 'clean' });
      assert.deepEqual(await clamd.scan(Readable.from([])), { kind: 'clean' });
      const source = generated(900 * 1024, 4096);
      assert.deepEqual(await clamd.scan(source), { kind: 'clean' });
      assert.equal(source.produced(), 900 * 1024);
    });

    test('the EICAR signature is found, also when split over several chunks', async () => {
      assert.deepEqual(await clamd.scan(Readable.from([EICAR])), { kind: 'infected', signature: EICAR_SIGNATURE });
      const pieces = [Buffer.from('prefix '), EICAR.subarray(0, 10), EICAR.subarray(10, 11), EICAR.subarray(11), Buffer.from(' suffix')];
      assert.deepEqual(await clamd.scan(Readable.from(pieces)), { kind: 'infected', signature: EICAR_SIGNATURE });
    });

    test('past StreamMaxLength the verdict is an error, and the source is not read to its end', async () => {
      const total = 64 * 1024 * 1024;
      const source = generated(total, 64 * 1024);
      const verdict = await clamd.scan(source);
      assert.equal(verdict.kind, 'error');
      assert.match((verdict as { message: string }).message, /INSTREAM size limit exceeded|StreamMaxLength/);
      assert.ok(source.produced() < total, `read ${source.produced()} of ${total} bytes`);
      assert.equal(source.destroyed, true);
      // clamd is still there for the next file.
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('next')])), { kind: 'clean' });
    });

    test('a failing source rejects with its own error, not as clamd being away', async () => {
      const source = new Readable({ read() {} });
      source.push(Buffer.alloc(1000));
      setImmediate(() => source.destroy(new Error('storage read failed')));
      await assert.rejects(clamd.scan(source), (error: Error) => !(error instanceof ClamdUnavailable) && /storage read failed/.test(error.message));
      assert.equal(await clamd.ping(), true);
    });

    test('an abort stops the scan with its reason', async () => {
      const controller = new AbortController();
      const source = new Readable({ read() {} }); // never ends
      source.push(Buffer.alloc(1000));
      const scanning = clamd.scan(source, controller.signal);
      setImmediate(() => controller.abort(new Error('shutting down')));
      await assert.rejects(scanning, /shutting down/);
      assert.equal(source.destroyed, true);
    });
  });
}

describe('clamd client: no verdict without clamd', () => {
  test('nobody listening: ClamdUnavailable (unreachable), and PING is false', async () => {
    const clamd = createClamd({ address: { socket: '/nonexistent/clamd.sock' }, timeoutMs: 5000 });
    await assert.rejects(clamd.scan(Readable.from([Buffer.from('x')])), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'unreachable');
    assert.equal(await clamd.ping(), false);
  });

  test('a peer that accepts and says nothing: ClamdUnavailable (silent) after the timeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const clamd = createClamd({ address: { host: '127.0.0.1', port }, timeoutMs: 300 });
      await assert.rejects(clamd.scan(Readable.from([Buffer.from('x')])), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'silent');
      assert.equal(await clamd.ping(), false);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

test('backpressure: a peer that stops reading stops the source (nothing piles up in memory)', async () => {
  const sockets: net.Socket[] = [];
  const stalled = net.createServer((socket) => {
    sockets.push(socket);
    socket.pause();
  });
  await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = stalled.address() as net.AddressInfo;
    const clamd = createClamd({ address: { host: '127.0.0.1', port }, timeoutMs: 1000 });
    const total = 1024 * 1024 * 1024;
    const source = generated(total, 64 * 1024);
    await assert.rejects(clamd.scan(source), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'silent');
    // What the kernel's socket buffers took, plus a chunk or two; never the 1 GiB.
    assert.ok(source.produced() < 64 * 1024 * 1024, `read ${source.produced()} bytes from the source`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => stalled.close(resolve));
  }
});

test("clamd's answers become verdicts", () => {
  const cases: [string, ReturnType<typeof parseAnswer>][] = [
    ['stream: OK', { kind: 'clean' }],
    ['stream: Win.Test.EICAR_HDB-1 FOUND', { kind: 'infected', signature: 'Win.Test.EICAR_HDB-1' }],
    ['stream: Eicar Test With Spaces FOUND', { kind: 'infected', signature: 'Eicar Test With Spaces' }],
    ['INSTREAM size limit exceeded. ERROR', { kind: 'error', message: 'INSTREAM size limit exceeded.' }],
    ["stream: Can't allocate memory ERROR", { kind: 'error', message: "Can't allocate memory" }],
    ['UNKNOWN COMMAND', { kind: 'error', message: 'unexpected answer from clamd: UNKNOWN COMMAND' }],
  ];
  for (const [answer, verdict] of cases) assert.deepEqual(parseAnswer(answer), verdict, answer);
});
