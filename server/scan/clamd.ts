// A clamd client for its INSTREAM command (clamd(8)): `zINSTREAM\0`, then the bytes as chunks each
// prefixed by its length (4 bytes, big-endian), then a zero-length chunk; clamd answers one
// NUL-terminated line: `stream: OK`, `stream: <signature> FOUND` or `… ERROR`. Bytes go from the
// source to the socket as they are read, waiting for the socket to drain: a file is never held
// in memory, however large.
//
// A verdict is what clamd said about the bytes. Anything else — no connection, silence for
// `timeoutMs`, a connection dropped without an answer — throws ClamdUnavailable: the file was
// not judged, and the caller tries again later.
//
// Past its StreamMaxLength clamd answers `INSTREAM size limit exceeded. ERROR` and closes the
// connection at once, with our next chunks unread: the following write fails (EPIPE/ECONNRESET)
// and Node destroys the socket, often discarding the answer still unread in the kernel (measured
// here: most of the time on a Unix socket, sometimes over TCP). So the sender yields to the event
// loop after each chunk (an early answer is read before the next write when it can be), and a
// connection dropped mid-stream without an answer is told apart by a PING: a clamd that still
// answers closed this stream on purpose — the same `error` verdict, in our words — while one that
// does not answer is unavailable (restarting, crashed), and the scan is retried.
import net from 'node:net';
import type { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ClamdConfig } from '../config.ts';

export type Verdict = { status: 'clean' } | { status: 'infected'; signature: string } | { status: 'error'; message: string };

/** clamd did not judge the file: it could not be reached, said nothing for too long, or hung up. Retry later. */
export class ClamdUnavailable extends Error {
  override name = 'ClamdUnavailable';
  constructor(
    readonly reason: 'unreachable' | 'silent' | 'hung-up',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface Clamd {
  /** Where clamd is, for logs. */
  readonly address: string;
  /** Streams `source` to clamd. Rejects with ClamdUnavailable, the source's own error, or the abort reason. */
  scan(source: Readable, signal?: AbortSignal): Promise<Verdict>;
  /** PING → PONG within `timeoutMs` (default: the configured timeout). Never throws. */
  ping(timeoutMs?: number): Promise<boolean>;
}

const INSTREAM = Buffer.from('zINSTREAM\0', 'latin1');
const PING = Buffer.from('zPING\0', 'latin1');
const END_OF_STREAM = Buffer.alloc(4);
/** clamd reads each chunk whole before scanning it; keep them moderate (fs streams give 1 MiB). */
const MAX_CHUNK = 1024 * 1024;

export function createClamd(config: Pick<ClamdConfig, 'address' | 'timeoutMs'>): Clamd {
  const address = 'socket' in config.address ? config.address.socket : `${config.address.host}:${config.address.port}`;

  async function ping(timeoutMs = config.timeoutMs): Promise<boolean> {
    const talk = converse(config.address, timeoutMs);
    try {
      await talk.send(PING);
      return (await talk.answer) === 'PONG';
    } catch {
      return false;
    } finally {
      talk.close();
    }
  }

  async function scan(source: Readable, signal?: AbortSignal): Promise<Verdict> {
    signal?.throwIfAborted();
    const talk = converse(config.address, config.timeoutMs, signal);
    // The source may be what we are waiting for (a slow S3 read): an abort ends it too.
    const stopSource = () => source.destroy(signal!.reason as Error);
    signal?.addEventListener('abort', stopSource, { once: true });
    let sent = 0;
    let ended = false;
    try {
      if (await talk.send(INSTREAM)) {
        for await (const data of source) {
          const chunk = typeof data === 'string' ? Buffer.from(data) : (data as Buffer);
          for (let at = 0; at < chunk.length && !talk.settled; at += MAX_CHUNK) {
            const piece = chunk.subarray(at, at + MAX_CHUNK);
            // A new header each time: the socket keeps a reference to every buffer until it is sent.
            const header = Buffer.alloc(4);
            header.writeUInt32BE(piece.length);
            talk.write(header);
            await talk.send(piece);
            sent += piece.length;
            // Lets an answer that came early (the size limit) be read before the next write fails.
            await nextTurn();
          }
          if (talk.settled) break;
        }
        ended = !talk.settled && (await talk.send(END_OF_STREAM));
      }
      return parseReply(await talk.answer);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof ClamdUnavailable && error.reason === 'hung-up' && !ended && (await ping())) {
        return { status: 'error', message: `clamd closed the stream after ${sent} bytes without an answer (over its StreamMaxLength?)` };
      }
      throw error;
    } finally {
      signal?.removeEventListener('abort', stopSource);
      talk.close();
      source.destroy();
    }
  }

  return { address, scan, ping };
}

/** clamd's one-line answer → a verdict. */
export function parseReply(answer: string): Verdict {
  if (answer === 'stream: OK') return { status: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(answer);
  if (found) return { status: 'infected', signature: found[1]! };
  const error = /^(?:stream: )?(.*?)\s*ERROR$/.exec(answer);
  if (error) return { status: 'error', message: error[1] || 'clamd reported an error' };
  return { status: 'error', message: `unexpected answer from clamd: ${answer.slice(0, 200)}` };
}

interface Conversation {
  /** clamd's answer up to its NUL; rejects with ClamdUnavailable (or the abort reason) when there is none. */
  readonly answer: Promise<string>;
  /** The connection is over: answered, failed or closed. */
  readonly settled: boolean;
  /** Writes without waiting. */
  write(data: Buffer): void;
  /** Writes, then waits until the socket drains or the conversation is over; false when it is over. */
  send(data: Buffer): Promise<boolean>;
  close(): void;
}

function converse(address: ClamdConfig['address'], timeoutMs: number, signal?: AbortSignal): Conversation {
  const socket = 'socket' in address ? net.connect({ path: address.socket }) : net.connect({ host: address.host, port: address.port });
  const where = 'socket' in address ? address.socket : `${address.host}:${address.port}`;
  let text = '';
  let settled = false;
  let connected = false;
  let resolveAnswer!: (answer: string) => void;
  let rejectAnswer!: (error: unknown) => void;
  const answer = new Promise<string>((resolve, reject) => {
    resolveAnswer = resolve;
    rejectAnswer = reject;
  });
  // Awaited once the caller has sent everything; a failure while it is still reading its source
  // must not count as unhandled.
  answer.catch(() => {});

  /** Whatever clamd said wins over how the connection ended (it hangs up right after a size-limit answer). */
  const settle = (failure: unknown) => {
    if (settled) return;
    settled = true;
    signal?.removeEventListener('abort', onAbort);
    socket.destroy();
    const end = text.indexOf('\0');
    const said = (end >= 0 ? text.slice(0, end) : text).trim();
    if (said !== '' && !signal?.aborted) resolveAnswer(said);
    else rejectAnswer(failure);
  };
  const onAbort = () => settle(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  socket.setTimeout(timeoutMs);
  socket.on('connect', () => (connected = true));
  socket.on('data', (data: Buffer) => {
    text += data.toString('utf8');
    if (text.includes('\0')) settle(null);
  });
  socket.on('timeout', () => settle(new ClamdUnavailable('silent', `clamd at ${where} said nothing for ${timeoutMs} ms`)));
  // A failed write (EPIPE/ECONNRESET after clamd hung up) is reported before the answer that was
  // already on its way has been read: settle only on 'close', which comes after the last 'data'.
  let failure: ClamdUnavailable | undefined;
  socket.on('error', (error: NodeJS.ErrnoException) => {
    const detail = error.code ?? error.message;
    failure ??= connected
      ? new ClamdUnavailable('hung-up', `the connection to clamd at ${where} failed: ${detail}`, { cause: error })
      : new ClamdUnavailable('unreachable', `cannot connect to clamd at ${where}: ${detail}`, { cause: error });
  });
  // Every conversation ends here, most of them answered already: the error is built only for one that was not.
  socket.on('close', () => {
    if (!settled) settle(failure ?? new ClamdUnavailable('hung-up', `clamd at ${where} closed the connection without an answer`));
  });

  return {
    answer,
    get settled() {
      return settled;
    },
    write(data) {
      if (!settled) socket.write(data);
    },
    async send(data) {
      if (settled) return false;
      if (!socket.write(data)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      }
      return !settled;
    },
    close() {
      settle(new ClamdUnavailable('hung-up', 'closed by the client'));
    },
  };
}
