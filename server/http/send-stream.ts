// Sends a Node stream as a response body. Under @hono/node-server the stream is piped straight into
// the socket (no web-stream conversion: 1 MiB file chunks go out as they are read), and when the
// client goes away the pipeline destroys the file stream at once, releasing its descriptor.
import { pipeline } from 'node:stream/promises';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

export function sendStream(c: Context, status: number, headers: Headers, body: Readable): Response {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  // Headers set by middleware (CORS) before the handler ran.
  for (const [name, value] of c.res.headers) if (!headers.has(name)) headers.set(name, value);
  if (!outgoing) return new Response(Readable.toWeb(body) as ReadableStream, { status, headers });
  outgoing.writeHead(status, Object.fromEntries(headers));
  pipeline(body, outgoing).catch(() => {
    // The client disconnected or the read failed mid-body: both streams are destroyed by pipeline;
    // there is no status left to change.
  });
  return RESPONSE_ALREADY_SENT;
}
