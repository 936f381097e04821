// What happens to the part of a request body the server did not read.
//
// An upload is often answered before its body is read: refused (413 quota_exceeded or
// upload_too_large, 409 offset_mismatch, 401, 423, 429) or stopped by the store. Its bytes are still
// on their way. Closing the connection under them makes the kernel answer them with a reset, and
// whoever is still sending loses the answer it has not read yet: a client reports a broken pipe, and
// a reverse proxy answers 502 in its place (Caddy's reverse_proxy, Apache's mod_proxy), and one
// with a passive health check passes the instance over (with one upstream every request answers 503
// meanwhile). @hono/node-server's own clean-up reads an unread body for 500 ms
// and then closes, which is too soon for a client on a mobile link.
//
// So once an upload's answer is out, the rest of its body is read and dropped, as Node's own http
// server does by default: up to its declared Content-Length (UNDECLARED_MAX_BYTES when it is
// chunked), and only while bytes keep coming (UPLOAD_IDLE_TIMEOUT_SECONDS without one ends it, as
// for a body being stored; Node's keep-alive timeout also applies). A body read to its end leaves
// the connection open for the client's next request, or closes it if its answer said
// Connection: close. One that passes a bound is closed the "lingering" way Apache and nginx close:
// our side ends (the client reads the answer, then end of stream), what still arrives is dropped
// for LINGER_MS, then the socket goes. A shutdown waits for a body being read as for a request in
// flight, within its grace.
//
// A body is dropped, never buffered: the cost is the bandwidth its client spends anyway.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import type { Drain } from './drain.ts';

/** The most of a chunked body (no Content-Length) read after its answer. */
const UNDECLARED_MAX_BYTES = 64 * 1024 * 1024;
/** How long a closing connection keeps dropping what still arrives before it is destroyed. */
const LINGER_MS = 2000;

export interface UnreadBodyOptions {
  /** A body that brings no byte for this long is not waited for (the connection is closed). */
  idleTimeoutMs: number;
  drain: Drain;
}

/** For upload routes: once the answer is out, the rest of the body is read and dropped (see above). */
export function readRestAfterAnswer(options: UnreadBodyOptions): MiddlewareHandler {
  return (c, next) => {
    const env = c.env as HttpBindings | undefined;
    return next().then(
      () => readRestOnceAnswered(env, options),
      (error: unknown) => {
        readRestOnceAnswered(env, options);
        throw error;
      },
    );
  };
}

/**
 * The same for one request (the upload fast path, server/upload-fast-path.ts, calls it directly).
 * Call it once the answer is known and before it is written: only then is it known whether a body
 * is left on the wire. A request whose body was read (nearly every one) keeps nothing here, and a
 * PATCH streaming for hours holds none of these listeners while it streams.
 */
export function readRestOnceAnswered(env: HttpBindings | undefined, options: UnreadBodyOptions): void {
  const incoming = env?.incoming;
  const outgoing = env?.outgoing;
  const socket = incoming?.socket as Socket | null | undefined;
  // `complete`: the whole body has arrived (what is left unread is in memory, not on the wire).
  if (incoming && outgoing && socket && !socket.destroyed && !incoming.complete) holdCloseUntilRead(incoming, outgoing, socket, options);
}

/**
 * node:http closes a connection whose answer said Connection: close (tus says so with every error)
 * as soon as that answer is out, and @hono/node-server's clean-up one whose body is unread, both
 * through `socket.destroySoon`: while the body is still arriving, that close waits until it is read.
 */
function holdCloseUntilRead(incoming: IncomingMessage, outgoing: ServerResponse, socket: Socket, options: UnreadBodyOptions): void {
  const destroySoon = socket.destroySoon;
  // node:http asks as the answer finishes, before this module hears of it; the adapter later.
  let answered = false;
  let closeAsked = false;
  socket.destroySoon = () => {
    if (incoming.complete) destroySoon.call(socket);
    else if (!answered) closeAsked = true;
  };
  const release = (how: 'read' | 'linger') => {
    socket.destroySoon = destroySoon;
    if (socket.destroyed) return;
    if (how === 'linger') closeLingering(socket);
    else if (closeAsked) destroySoon.call(socket);
  };
  // `on`, not `once`: a response finishes and closes once, and each `once` costs a bound wrapper
  // and a state object for as long as the upload streams.
  outgoing.on('finish', () => {
    answered = true;
    if (incoming.complete || incoming.destroyed || socket.destroyed) release('read');
    else readRest(incoming, options, release);
  });
  // A response that never finishes (the connection was cut) leaves nothing to read.
  outgoing.on('close', () => {
    if (!outgoing.writableFinished) socket.destroySoon = destroySoon;
  });
}

function readRest(incoming: IncomingMessage, options: UnreadBodyOptions, release: (how: 'read' | 'linger') => void): void {
  const declared = Number(incoming.headers['content-length']);
  const limit = incoming.headers['content-length'] !== undefined && Number.isSafeInteger(declared) ? declared : UNDECLARED_MAX_BYTES;
  const endWork = options.drain.begin();
  let read = 0;
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => done('linger'), options.idleTimeoutMs);
    idle.unref();
  };
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > limit) done('linger');
    else arm();
  };
  // The body's end, or the connection's: nothing is left to read either way.
  const onEnd = () => done('read');
  const onIdle = () => done('linger');
  let settled = false;
  function done(how: 'read' | 'linger'): void {
    if (settled) return;
    settled = true;
    clearTimeout(idle);
    incoming.off('data', onData).off('end', onEnd).off('close', onEnd).off('timeout', onIdle);
    endWork();
    release(how);
  }
  // Nothing reads the body once its answer is out: whatever was fed from it (the stream handed to
  // tus, whose full queue pauses the socket) lets go, as in node:http's own discarding (_dump).
  incoming.removeAllListeners('data');
  incoming.on('data', onData).once('end', onEnd).once('close', onEnd);
  // node:http's keep-alive timeout emits 'timeout' on a request whose body is still arriving; a
  // listener keeps it from destroying the socket outright.
  incoming.once('timeout', onIdle);
  arm();
  incoming.resume();
}

/** Ends our side, drops what still arrives for LINGER_MS or until the peer ends, then destroys the socket. */
export function closeLingering(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  socket.on('data', () => {}).resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('end', () => socket.destroy());
  socket.once('close', () => clearTimeout(timer));
}

/** Whatever closes `socket` from now on (node:http after `Connection: close`, the adapter's clean-up) closes it lingering. */
export function lingerOnClose(socket: Socket): void {
  let lingering = false;
  socket.destroySoon = () => {
    if (lingering) return;
    lingering = true;
    closeLingering(socket);
  };
}
