// The clamd client (server/scan/clamd.ts) beyond test/server/scan.test.ts's basics: over TCP as well as a
// Unix socket against a real clamd, a slow but steady source longer than the timeout, the size
// limit, and what is not a verdict (a peer that says nothing, one that stops reading, a failing
// source, an abort).
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ClamdUnavailable, createClamd, parseReply, type Clamd } from '../../../server/scan/clamd.ts';
import { EICAR, EICAR_SIGNATURE, startClamd, type ClamdProcess } from '../../support/clamd.ts';

/** `total` bytes in chunks of `chunk`, made as they are read; `produced()` says how far it got. */
function generated(total: number, chunk: number): Readable & { produced(): number } {
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const n = Math.min(chunk, total - produced);
      produced += n;
      this.push(Buffer.alloc(n, 0x41));
    },
  });
  return Object.assign(stream, { produced: () => produced });
}

/** `pieces` chunks of 1 KiB, one every `everyMs`: a slow storage read that never stalls. */
function trickle(pieces: number, everyMs: number): Readable {
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  return new Readable({
    read() {
      timer ??= setInterval(() => {
        this.push(Buffer.alloc(1024, 0x42));
        if (++sent === pieces) {
          clearInterval(timer);
          this.push(null);
        }
      }, everyMs);
    },
    destroy(error, callback) {
      clearInterval(timer);
      callback(error);
    },
  });
}

/** A TCP peer that accepts and then does `onSocket` (say nothing, stop reading). */
async function fakePeer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

for (const transport of ['unix', 'tcp'] as const) {
  describe(`clamd client over ${transport}`, () => {
    let daemon: ClamdProcess;
    let clamd: Clamd;
    before(async () => {
      daemon = await startClamd({ streamMaxLength: '1M', tcp: transport === 'tcp' });
      clamd = createClamd({ address: daemon.address, timeoutMs: 30_000 });
    });
    after(() => daemon?.dispose());

    test('clean, empty, many small chunks, and a signature split across chunks', async () => {
      assert.equal(await clamd.ping(), true);
      assert.deepEqual(await clamd.scan(Readable.from([])), { status: 'clean' });
      const source = generated(900 * 1024, 4096);
      assert.deepEqual(await clamd.scan(source), { status: 'clean' });
      assert.equal(source.produced(), 900 * 1024);
      const infected = Buffer.from(`prefix ${EICAR} suffix`, 'latin1');
      const pieces = [infected.subarray(0, 10), infected.subarray(10, 11), infected.subarray(11, 40), infected.subarray(40)];
      assert.deepEqual(await clamd.scan(Readable.from(pieces)), { status: 'infected', signature: EICAR_SIGNATURE });
    });

    test('a slow, steady source outlasting the timeout is still scanned (the timeout is silence, not duration)', async () => {
      const patient = createClamd({ address: daemon.address, timeoutMs: 1500 });
      assert.deepEqual(await patient.scan(trickle(25, 100)), { status: 'clean' });
    });

    test('past StreamMaxLength: an error verdict, the source not read to its end, clamd still there', async () => {
      for (let i = 0; i < 5; i++) {
        const total = 64 * 1024 * 1024;
        const source = generated(total, 64 * 1024);
        const verdict = await clamd.scan(source);
        assert.equal(verdict.status, 'error', `attempt ${i}`);
        assert.match((verdict as { message: string }).message, /INSTREAM size limit exceeded|StreamMaxLength/);
        assert.ok(source.produced() < total, `read ${source.produced()} of ${total} bytes`);
        assert.equal(source.destroyed, true);
      }
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('next')])), { status: 'clean' });
    });

    test('a failing source rejects with its own error, not as clamd being away', async () => {
      const source = new Readable({ read() {} });
      source.push(Buffer.alloc(1000));
      setImmediate(() => source.destroy(new Error('storage read failed')));
      await assert.rejects(clamd.scan(source), (error: Error) => !(error instanceof ClamdUnavailable) && /storage read failed/.test(error.message));
      assert.equal(await clamd.ping(), true);
    });

    test('an abort ends the scan with its reason and ends the source', async () => {
      const controller = new AbortController();
      const source = new Readable({ read() {} }); // never ends on its own
      source.push(Buffer.alloc(1000));
      const scanning = clamd.scan(source, controller.signal);
      setImmediate(() => controller.abort(new Error('shutting down')));
      await assert.rejects(scanning, /shutting down/);
      assert.equal(source.destroyed, true);
    });
  });
}

describe('clamd client: no verdict without clamd', () => {
  test('a peer that accepts and says nothing: ClamdUnavailable (silent); PING false', async () => {
    const peer = await fakePeer((socket) => socket.resume());
    try {
      const clamd = createClamd({ address: { host: '127.0.0.1', port: peer.port }, timeoutMs: 300 });
      await assert.rejects(clamd.scan(Readable.from([Buffer.from('x')])), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'silent');
      assert.equal(await clamd.ping(), false);
    } finally {
      await peer.close();
    }
  });

  test('backpressure: a peer that stops reading stops the source (nothing piles up in memory)', async () => {
    const peer = await fakePeer((socket) => socket.pause());
    try {
      const clamd = createClamd({ address: { host: '127.0.0.1', port: peer.port }, timeoutMs: 1000 });
      const total = 1024 * 1024 * 1024;
      const source = generated(total, 64 * 1024);
      await assert.rejects(clamd.scan(source), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'silent');
      // What the kernel's socket buffers took, and a chunk or two more; never the 1 GiB.
      assert.ok(source.produced() < 64 * 1024 * 1024, `read ${source.produced()} bytes from the source`);
    } finally {
      await peer.close();
    }
  });

  test('nobody listening: ClamdUnavailable (unreachable)', async () => {
    const clamd = createClamd({ address: { socket: '/nonexistent/clamd.sock' }, timeoutMs: 5000 });
    await assert.rejects(clamd.scan(Readable.from([Buffer.from('x')])), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'unreachable');
  });
});

test("clamd's replies become verdicts", () => {
  const cases: [string, ReturnType<typeof parseReply>][] = [
    ['stream: OK', { status: 'clean' }],
    ['stream: Win.Test.EICAR_HDB-1 FOUND', { status: 'infected', signature: 'Win.Test.EICAR_HDB-1' }],
    ['stream: A Name With Spaces FOUND', { status: 'infected', signature: 'A Name With Spaces' }],
    ['INSTREAM size limit exceeded. ERROR', { status: 'error', message: 'INSTREAM size limit exceeded.' }],
    ["stream: Can't allocate memory ERROR", { status: 'error', message: "Can't allocate memory" }],
    ['UNKNOWN COMMAND', { status: 'error', message: 'unexpected answer from clamd: UNKNOWN COMMAND' }],
  ];
  for (const [reply, verdict] of cases) assert.deepEqual(parseReply(reply), verdict, reply);
});

/**
 * A clamd stand-in speaking just enough of the protocol to watch sessions: `zIDSESSION`, then
 * `zINSTREAM` commands answered `<n>: stream: OK`, `zEND`; `zPING` alone answered PONG unless
 * `pong` is false. `onCommand` may cut a session instead (return false).
 */
async function sessionPeer(options: { pong?: boolean; onInstream?: (n: number, socket: net.Socket) => boolean } = {}) {
  const connections: { commands: string[] }[] = [];
  let instreams = 0;
  const peer = await fakePeer((socket) => {
    const seen = { commands: [] as string[] };
    connections.push(seen);
    let buffer = Buffer.alloc(0);
    let streaming = false;
    let number = 0;
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        if (streaming) {
          if (buffer.length < 4) return;
          const length = buffer.readUInt32BE(0);
          if (buffer.length < 4 + length) return;
          buffer = buffer.subarray(4 + length);
          if (length === 0) {
            streaming = false;
            socket.write(`${number}: stream: OK\0`);
          }
          continue;
        }
        const end = buffer.indexOf(0);
        if (end < 0) return;
        const command = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 1);
        seen.commands.push(command);
        if (command === 'zIDSESSION') continue;
        number++;
        if (command === 'zPING') {
          if (options.pong === false) return void socket.destroy();
          socket.write(seen.commands.includes('zIDSESSION') ? `${number}: PONG\0` : 'PONG\0');
        } else if (command === 'zINSTREAM') {
          if (options.onInstream && !options.onInstream(++instreams, socket)) return;
          streaming = true;
        } else if (command === 'zEND') return void socket.end();
      }
    });
  });
  return { ...peer, connections };
}

describe('clamd client: sessions', () => {
  test('back-to-back scans share one connection (zIDSESSION); an idle session is ended with zEND', async () => {
    const peer = await sessionPeer();
    const clamd = createClamd({ address: { host: '127.0.0.1', port: peer.port }, timeoutMs: 5000 });
    try {
      for (let i = 0; i < 5; i++) assert.deepEqual(await clamd.scan(Readable.from([Buffer.from(`file ${i}`)])), { status: 'clean' });
      assert.equal(peer.connections.length, 1);
      assert.deepEqual(peer.connections[0]!.commands, ['zIDSESSION', ...Array(5).fill('zINSTREAM')]);
      // Left idle, the session says goodbye by itself (well before clamd's IdleTimeout would cut it).
      const deadline = Date.now() + 10_000;
      while (!peer.connections[0]!.commands.includes('zEND') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(peer.connections[0]!.commands.at(-1), 'zEND');
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('later')])), { status: 'clean' });
      assert.equal(peer.connections.length, 2);
    } finally {
      clamd.close();
      await peer.close();
    }
  });

  test('a session cut mid-stream while clamd does not answer PING: no verdict (ClamdUnavailable); the next scan opens a new session', async () => {
    const peer = await sessionPeer({ pong: false, onInstream: (n, socket) => (n === 2 ? (socket.destroy(), false) : true) });
    const clamd = createClamd({ address: { host: '127.0.0.1', port: peer.port }, timeoutMs: 5000 });
    try {
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('first')])), { status: 'clean' });
      await assert.rejects(clamd.scan(Readable.from([Buffer.alloc(256 * 1024, 1)])), (error: unknown) => error instanceof ClamdUnavailable && error.reason === 'hung-up');
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('third')])), { status: 'clean' });
      const sessions = peer.connections.filter((c) => c.commands[0] === 'zIDSESSION');
      assert.equal(sessions.length, 2);
    } finally {
      clamd.close();
      await peer.close();
    }
  });

  test('a session whose clamd went away while it was idle: the next scan gets a verdict from clamd restarted', async () => {
    const daemon = await startClamd();
    const clamd = createClamd({ address: daemon.address, timeoutMs: 30_000 });
    try {
      assert.deepEqual(await clamd.scan(Readable.from([Buffer.from('before')])), { status: 'clean' });
      await daemon.stop();
      await daemon.restart();
      const infected = Buffer.from(EICAR, 'latin1');
      assert.deepEqual(await clamd.scan(Readable.from([infected])), { status: 'infected', signature: EICAR_SIGNATURE });
    } finally {
      clamd.close();
      await daemon.dispose();
    }
  });
});
