// The live memory of a server started with `--inspect=127.0.0.1:0`: through the inspector protocol
// (Chrome DevTools protocol over a WebSocket), a full garbage collection, then process.memoryUsage()
// evaluated inside it. heapUsed + external after a full GC is what the process really keeps alive,
// which RSS (pages ever touched, young garbage included) cannot say. Node 20 has no WebSocket
// client without a flag, so this speaks the few frames it needs (RFC 6455) itself.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Running } from './targets.ts';

const TIMEOUT_MS = 60_000;

export type Live = { heapUsed: number; external: number };

export type Inspector = {
  liveMemory: () => Promise<Live>;
  /** Starts V8's CPU profiler; the returned function stops it and gives the .cpuprofile JSON. */
  startProfile: () => Promise<() => Promise<string>>;
  /** An expression evaluated in the process (as a script: `process.getBuiltinModule` for modules), its JSON value. */
  evaluate: (expression: string) => Promise<unknown>;
  close: () => void;
};

/** Connects to the inspector the server announced on stderr. */
export async function connectInspector(server: Running): Promise<Inspector> {
  const deadline = performance.now() + TIMEOUT_MS;
  let url: string | undefined;
  while (!(url = /Debugger listening on (ws:\/\/\S+)/.exec(server.stderr())?.[1])) {
    if (performance.now() > deadline) throw new Error('no "Debugger listening" line: start the target with --inspect=127.0.0.1:0');
    await new Promise((r) => setTimeout(r, 20));
  }
  const socket = await upgrade(url);
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  readFrames(socket, (text) => {
    const message = JSON.parse(text) as { id?: number; result?: unknown; error?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.error ? Promise.reject(new Error(JSON.stringify(message.error))) : message.result);
  });
  const call = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      socket.write(frame(JSON.stringify({ id, method, params })));
    });
  return {
    async liveMemory() {
      await call('HeapProfiler.collectGarbage');
      const result = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
      const usage = JSON.parse(result.result.value) as { heapUsed: number; external: number };
      return { heapUsed: usage.heapUsed, external: usage.external };
    },
    async startProfile() {
      await call('Profiler.enable');
      await call('Profiler.start');
      return async () => JSON.stringify(((await call('Profiler.stop')) as { profile: unknown }).profile);
    },
    async evaluate(expression) {
      const result = (await call('Runtime.evaluate', { expression: `JSON.stringify(${expression})`, returnByValue: true })) as { result: { value?: string }; exceptionDetails?: unknown };
      if (result.exceptionDetails !== undefined || result.result.value === undefined) throw new Error(`evaluate failed: ${JSON.stringify(result.exceptionDetails)}`);
      return JSON.parse(result.result.value) as unknown;
    },
    close: () => socket.destroy(),
  };
}

function upgrade(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = http.request(url.replace(/^ws:/, 'http:'), {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64') },
    });
    req.once('upgrade', (_res, socket) => resolve(socket));
    req.once('response', (res) => reject(new Error(`inspector answered ${res.statusCode} instead of upgrading`)));
    req.once('error', reject);
    req.end();
  });
}

/** One masked text frame, as a client must send (RFC 6455 §5.2). */
function frame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, 0x80 | n]) : n < 65536 ? Buffer.from([0x81, 0x80 | 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), bigLength(n)]);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < n; i++) masked[i]! ^= mask[i % 4]!;
  return Buffer.concat([head, mask, masked]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Unmasked server frames; continuation frames are joined to their message. */
function readFrames(socket: Socket, onText: (text: string) => void): void {
  let buffered = Buffer.alloc(0);
  let message: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (buffered.length < 2) return;
      const fin = (buffered[0]! & 0x80) !== 0;
      let length = buffered[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (buffered.length < 4) return;
        length = buffered.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (buffered.length < 10) return;
        length = Number(buffered.readBigUInt64BE(2));
        at = 10;
      }
      if (buffered.length < at + length) return;
      message.push(buffered.subarray(at, at + length));
      buffered = buffered.subarray(at + length);
      if (fin) {
        onText(Buffer.concat(message).toString('utf8'));
        message = [];
      }
    }
  });
  socket.on('error', () => {});
}
