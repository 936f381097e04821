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
//
// Scans run in clamd sessions (`zIDSESSION`: many commands on one connection, each answer
// prefixed `<n>: `): a connection per file was a large part of the scan's cost for small files
// (bench/README.md). A session goes back to an idle pool once it has answered, and is ended when it
// stays idle for SESSION_IDLE_MS: far below clamd's shortest IdleTimeout (1 s), so a session taken
// from the pool was never closed by clamd for idleness, and one that hangs up mid-stream means what
// it means on a new connection (the size limit, or clamd gone), told apart by the same PING.
// A session that failed in any way is destroyed, never reused.
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
  /** Ends the idle sessions (shutdown); a later scan opens a new one. */
  close(): void;
}

const INSTREAM = Buffer.from('zINSTREAM\0', 'latin1');
const IDSESSION = Buffer.from('zIDSESSION\0', 'latin1');
const END_SESSION = Buffer.from('zEND\0', 'latin1');
/** How long an answered session waits in the pool for the next scan (see the top of this file). */
const SESSION_IDLE_MS = 500;
/** Sessions kept idle at most: the scan worker runs a few scans at once. */
const MAX_IDLE_SESSIONS = 4;
/** clamd's answer inside a session starts with the command's number. */
const SESSION_REPLY = /^\d+: /;
const PING = Buffer.from('zPING\0', 'latin1');
const END_OF_STREAM = Buffer.alloc(4);
/** clamd reads each chunk whole before scanning it; keep them moderate (fs streams give 1 MiB). */
const MAX_CHUNK = 1024 * 1024;

export function createClamd(config: Pick<ClamdConfig, 'address' | 'timeoutMs'>): Clamd {
  const address = 'socket' in config.address ? config.address.socket : `${config.address.host}:${config.address.port}`;

  /** Answered sessions waiting for the next scan, each with what stops listening to it. */
  const idle = new Map<net.Socket, () => void>();

  /** Back to the pool after a clean answer, unref'd (an idle session never keeps the process alive). */
  function keep(socket: net.Socket): void {
    if (idle.size >= MAX_IDLE_SESSIONS) return endSession(socket);
    // Anything from clamd while idle (a hang-up, stray bytes) ends the session.
    const drop = () => {
      unlisten();
      idle.delete(socket);
      socket.destroy();
    };
    const expire = () => {
      unlisten();
      idle.delete(socket);
      endSession(socket);
    };
    const unlisten = () => socket.off('close', drop).off('error', drop).off('data', drop).off('timeout', expire);
    socket.on('close', drop).on('error', drop).on('data', drop).on('timeout', expire);
    socket.setTimeout(SESSION_IDLE_MS);
    socket.unref();
    idle.set(socket, unlisten);
  }

  function takeIdle(): net.Socket | undefined {
    for (const [socket, unlisten] of idle) {
      idle.delete(socket);
      unlisten();
      if (socket.destroyed || !socket.writable) {
        socket.destroy();
        continue;
      }
      socket.ref();
      return socket;
    }
    return undefined;
  }

  async function ping(timeoutMs = config.timeoutMs): Promise<boolean> {
    const talk = converse(connect(config.address), address, false, timeoutMs);
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
    const reused = takeIdle();
    const talk = converse(reused ?? connect(config.address), address, reused !== undefined, config.timeoutMs, signal);
    if (!reused) talk.write(IDSESSION);
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
      const verdict = parseReply((await talk.answer).replace(SESSION_REPLY, ''));
      // Only a session that took the whole stream and judged it serves again: clamd ends the
      // session after an error (the size limit among them).
      if (ended && verdict.status !== 'error') {
        const session = talk.detach();
        if (session) keep(session);
      }
      return verdict;
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

  function close(): void {
    for (const [socket, unlisten] of idle) {
      unlisten();
      endSession(socket);
    }
    idle.clear();
  }

  return { address, scan, ping, close };
}

/** Says goodbye to clamd and lets the socket go (it is no longer listened to). */
function endSession(socket: net.Socket): void {
  socket.on('error', () => {}); // what the peer does now no longer matters
  socket.setTimeout(0);
  socket.end(END_SESSION);
  socket.unref();
}

function connect(address: ClamdConfig['address']): net.Socket {
  return 'socket' in address ? net.connect({ path: address.socket }) : net.connect({ host: address.host, port: address.port });
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
  /** The socket of a conversation answered cleanly, no longer listened to; undefined otherwise. */
  detach(): net.Socket | undefined;
  /** Ends the conversation; its socket is destroyed unless it was detached. */
  close(): void;
}

/**
 * One command on `socket` (`connected`: a session from the pool). An answered conversation may
 * hand its socket back (detach) instead of destroying it.
 */
function converse(socket: net.Socket, where: string, connected: boolean, timeoutMs: number, signal?: AbortSignal): Conversation {
  let text = '';
  let settled = false;
  /** Settled by one whole answer and nothing after it: the socket may serve another command. */
  let answered = false;
  let detached = false;
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
    const end = text.indexOf('\0');
    answered = failure === null && end === text.length - 1;
    if (!answered) socket.destroy();
    const said = (end >= 0 ? text.slice(0, end) : text).trim();
    if (said !== '' && !signal?.aborted) resolveAnswer(said);
    else rejectAnswer(failure);
  };
  const onAbort = () => settle(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  const onConnect = () => (connected = true);
  const onData = (data: Buffer) => {
    text += data.toString('utf8');
    if (text.includes('\0')) settle(null);
  };
  const onTimeout = () => settle(new ClamdUnavailable('silent', `clamd at ${where} said nothing for ${timeoutMs} ms`));
  // A failed write (EPIPE/ECONNRESET after clamd hung up) is reported before the answer that was
  // already on its way has been read: settle only on 'close', which comes after the last 'data'.
  let failure: ClamdUnavailable | undefined;
  const onError = (error: NodeJS.ErrnoException) => {
    const detail = error.code ?? error.message;
    failure ??= connected
      ? new ClamdUnavailable('hung-up', `the connection to clamd at ${where} failed: ${detail}`, { cause: error })
      : new ClamdUnavailable('unreachable', `cannot connect to clamd at ${where}: ${detail}`, { cause: error });
  };
  // Every conversation ends here, most of them answered already: the error is built only for one that was not.
  const onClose = () => {
    if (!settled) settle(failure ?? new ClamdUnavailable('hung-up', `clamd at ${where} closed the connection without an answer`));
  };
  socket.setTimeout(timeoutMs);
  if (!connected) socket.once('connect', onConnect);
  socket.on('data', onData).on('timeout', onTimeout).on('error', onError).on('close', onClose);

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
    detach() {
      if (!answered || detached || socket.destroyed) return undefined;
      detached = true;
      socket.off('connect', onConnect).off('data', onData).off('timeout', onTimeout).off('error', onError).off('close', onClose);
      socket.setTimeout(0);
      return socket;
    },
    close() {
      // An Error captures a stack: built only for a conversation cut before its answer.
      if (!settled) settle(new ClamdUnavailable('hung-up', 'closed by the client'));
      if (!detached) socket.destroy();
    },
  };
}
