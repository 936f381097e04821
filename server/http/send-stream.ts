// A Node stream as a response body. @hono/node-server reads it chunk by chunk into the socket;
// when the client goes away it cancels the web stream, which destroys the Node stream and so
// releases its file descriptor at once. (Its RESPONSE_ALREADY_SENT escape hatch, which would let
// us pipe directly, is ignored on its cached-response path in 2.1.x; measured files are read in
// 1 MiB chunks, so the per-chunk cost of the web stream stays small.)
import { Readable } from 'node:stream';

export function streamResponse(status: number, headers: Headers, body: Readable): Response {
  return new Response(Readable.toWeb(body) as ReadableStream, { status, headers });
}
