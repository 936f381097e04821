// The parts of the OpenAPI document that no route describes itself: the tus endpoint (one Hono
// handler for every method, with tus 1.0's headers as its interface) and /metrics (Prometheus
// text). Written by hand from tus 1.0 (https://tus.io/protocols/resumable-upload) and from what
// server/routes/uploads.ts and server/metrics-route.ts answer; test/server/api-docs.test.ts checks
// them against a live server's OPTIONS answer and the error table.
import { ERROR_CODES, type ErrorCode } from '../errors.ts';

const PROBLEM_REF = '#/components/schemas/Problem';
const FILE_RECORD_REF = '#/components/schemas/FileRecord';

const header = (description: string, schema: object = { type: 'string' }) => ({ description, schema });
const requestHeader = (name: string, description: string, required = false, schema: object = { type: 'string' }) => ({
  name,
  in: 'header',
  required,
  description,
  schema,
});
const bytes = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

const TUS_RESUMABLE = header('Always 1.0.0, on every response of the tus endpoint', { type: 'string', const: '1.0.0' });
const TUS_RESUMABLE_REQUEST = requestHeader('Tus-Resumable', 'The protocol version the client speaks; anything but 1.0.0 is 412', true, { type: 'string', const: '1.0.0' });
const METHOD_OVERRIDE = requestHeader(
  'X-HTTP-Method-Override',
  'PATCH, DELETE or HEAD sent as POST, for clients behind proxies that block those methods (tus-java-client, tus-android-client)',
);
const UPLOAD_EXPIRES = header('RFC 9110 date after which an idle unfinished upload is removed (UPLOAD_EXPIRY_SECONDS after its last recorded activity)');
const UPLOAD_CHECKSUM = requestHeader(
  'Upload-Checksum',
  '`<algorithm> <base64 digest>` of this request\'s body (checksum extension; sha1, md5 or sha256): a mismatch answers 460 and keeps none of the body',
);
const UPLOAD_ID = { name: 'id', in: 'path', required: true, description: 'The upload id: the last segment of the Location that creation answered', schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };

/**
 * Problem responses for these codes, one entry per status: a status shared by several codes lists
 * them all, so a generated client knows which `code` values a status may carry.
 */
function problems(codes: ErrorCode[]): Record<string, object> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERROR_CODES[code].status, [...(byStatus.get(ERROR_CODES[code].status) ?? []), code]);
  const responses: Record<string, object> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: list.map((code) => `\`${code}\`: ${ERROR_CODES[code].title}`).join('; '),
      headers: { 'Tus-Resumable': TUS_RESUMABLE, ...(['upload_locked', 'upload_unavailable', 'unavailable', 'insufficient_storage'].some((c) => list.includes(c as ErrorCode)) ? { 'Retry-After': header('Seconds to wait before retrying', { type: 'integer' }) } : {}) },
      content: {
        'application/problem+json': {
          schema: { allOf: [{ $ref: PROBLEM_REF }, { type: 'object', properties: { code: { type: 'string', enum: list } } }] },
        },
      },
    };
  }
  return responses;
}

/** Refusals every authenticated tus request may meet, whatever its method. */
const COMMON: ErrorCode[] = ['precondition_failed', 'unauthenticated', 'invalid_token', 'token_expired', 'rate_limited', 'internal', 'unavailable'];
const FINISH: ErrorCode[] = ['checksum_mismatch', 'type_not_allowed', 'insufficient_storage'];
/** Requests that change state: a cookie from another origin is refused; a body's checksum is checked. */
const STATE_CHANGE: ErrorCode[] = ['origin_not_allowed', 'unsupported_checksum_algorithm'];

const finished = (status: '200' | '201', description: string) => ({
  description,
  headers: {
    'Tus-Resumable': TUS_RESUMABLE,
    'X-File-Key': header('The finished file\'s key (users/<user_id>/<yyyy>/<mm>/<dd>/<upload_id><.ext>), for the files API and signed links'),
    ...(status === '201' ? { Location: header('The upload\'s URL') } : {}),
  },
  content: { 'application/json': { schema: { $ref: FILE_RECORD_REF } } },
});

export const TUS_PATHS = {
  '/v1/uploads': {
    options: {
      tags: ['uploads (tus 1.0)'],
      summary: 'Discover the tus versions, extensions and size limit this server offers',
      security: [],
      responses: {
        '204': {
          description: 'What the server supports',
          headers: {
            'Tus-Resumable': TUS_RESUMABLE,
            'Tus-Version': header('Protocol versions offered', { type: 'string', example: '1.0.0' }),
            'Tus-Extension': header('Extensions offered, comma-separated', { type: 'string', example: 'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation' }),
            'Tus-Checksum-Algorithm': header('Algorithms accepted in Upload-Checksum (checksum extension)', { type: 'string', example: 'sha1,md5,sha256' }),
            'Tus-Max-Size': header('Largest upload accepted, in bytes (MAX_UPLOAD_BYTES)', bytes),
          },
        },
      },
    },
    post: {
      tags: ['uploads (tus 1.0)'],
      summary: 'Create an upload (tus creation), optionally with its first bytes (creation-with-upload)',
      description:
        'Reserves `Upload-Length` bytes of the caller\'s quota. A user creates uploads for themselves; the service token names the owner with the `user_id` metadata value. ' +
        'Send the bytes with PATCH to the answered `Location`. A body that completes the upload finishes it at once (201 with the file record). ' +
        'The same resources also speak the IETF resumable-upload draft (a request with `Upload-Draft-Interop-Version` 5 or 6 and no `Tus-Resumable`: `Upload-Complete`, `Upload-Offset`, `Upload-Limit`).',
      parameters: [
        TUS_RESUMABLE_REQUEST,
        requestHeader('Upload-Length', 'The upload\'s size in bytes; or send Upload-Defer-Length instead', false, bytes),
        requestHeader('Upload-Defer-Length', '1: the size is declared by a later PATCH (creation-defer-length)', false, { type: 'string', const: '1' }),
        requestHeader(
          'Upload-Concat',
          '`partial` creates a part of a parallel upload (never a file of its own); `final;<url> <url> …` joins the caller\'s finished partial uploads, in that order, into one file (concatenation extension)',
        ),
        UPLOAD_CHECKSUM,
        requestHeader(
          'Upload-Metadata',
          'Comma-separated `key base64(value)` pairs. Keys understood: `filename`, `filetype` (a media type), `folder` (a logical folder such as main/pictures), `sha256` (64 hex digits of the whole file; a mismatch refuses the upload), `user_id` (service token only)',
        ),
        METHOD_OVERRIDE,
      ],
      requestBody: {
        required: false,
        description: 'The first bytes of the upload (creation-with-upload), with Content-Type application/offset+octet-stream',
        content: { 'application/offset+octet-stream': { schema: { type: 'string', format: 'binary' } } },
      },
      responses: {
        '201': {
          description: 'Created. When the body completed the upload, the body is the file record and X-File-Key its key',
          headers: {
            'Tus-Resumable': TUS_RESUMABLE,
            Location: header('The upload\'s URL, on PUBLIC_URL'),
            'Upload-Offset': header('Bytes stored so far (when the request carried a body)', bytes),
            'Upload-Expires': UPLOAD_EXPIRES,
            'X-File-Key': header('Present when the request completed the upload'),
          },
          content: { 'application/json': { schema: { $ref: FILE_RECORD_REF } } },
        },
        ...problems([...COMMON, ...STATE_CHANGE, 'invalid_header', 'invalid_metadata', 'invalid_user_id', 'bad_request', 'forbidden', 'method_not_allowed', 'upload_too_large', 'quota_exceeded', 'unsupported_media_type', 'invalid_concatenation', ...FINISH]),
      },
    },
  },
  '/v1/uploads/{id}': {
    parameters: [UPLOAD_ID],
    head: {
      tags: ['uploads (tus 1.0)'],
      summary: 'Where an upload stands: how many bytes the server has, to resume from there',
      description:
        'Someone else\'s upload answers 404 as if it did not exist. A finished upload answers 404 too: its file is in the files API. ' +
        'When every byte is stored but the final PATCH\'s checks failed, HEAD runs the finish again and answers with X-File-Key, or with the refusal.',
      parameters: [TUS_RESUMABLE_REQUEST, METHOD_OVERRIDE],
      responses: {
        '200': {
          description: 'The upload\'s state (no body)',
          headers: {
            'Tus-Resumable': TUS_RESUMABLE,
            'Upload-Offset': header('Bytes stored: resume from here', bytes),
            'Upload-Length': header('The declared size (absent while deferred)', bytes),
            'Upload-Defer-Length': header('1 while the size is not declared yet'),
            'Upload-Metadata': header('The metadata given at creation'),
            'Cache-Control': header('no-store'),
            'Upload-Concat': header('`partial` for a part of a parallel upload'),
            'X-File-Key': header('Present when this HEAD finished the upload'),
          },
        },
        // Never a 5xx: a failure on the server's side answers 423 upload_unavailable (routes/uploads.ts).
        ...problems(([...COMMON, 'not_found', 'upload_locked', 'upload_unavailable', ...FINISH] as ErrorCode[]).filter((c) => ERROR_CODES[c].status < 500)),
      },
    },
    patch: {
      tags: ['uploads (tus 1.0)'],
      summary: 'Send bytes at an offset; the request that stores the last byte finishes the upload',
      description:
        'Only one request writes an upload at a time: a new HEAD, PATCH or DELETE asks a running one to stop (within 3 s), keeping the bytes it stored. ' +
        'A body may stream for hours. ' +
        'When the last byte arrives the SHA-256 is checked (if declared), the file moves to its key and is recorded: the answer is 200 with the file record.',
      parameters: [
        TUS_RESUMABLE_REQUEST,
        requestHeader('Upload-Offset', 'Must equal the offset HEAD reports, else 409', true, bytes),
        requestHeader('Upload-Length', 'Declares the size of a deferred-length upload (once)', false, bytes),
        UPLOAD_CHECKSUM,
        METHOD_OVERRIDE,
      ],
      requestBody: { required: true, content: { 'application/offset+octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      responses: {
        '204': {
          description: 'Bytes stored, upload not finished yet',
          headers: { 'Tus-Resumable': TUS_RESUMABLE, 'Upload-Offset': header('The new offset', bytes), 'Upload-Expires': UPLOAD_EXPIRES },
        },
        '200': finished('200', 'The upload is complete and recorded: the body is the file record'),
        ...problems([...COMMON, ...STATE_CHANGE, 'invalid_header', 'bad_request', 'not_found', 'offset_mismatch', 'upload_too_large', 'quota_exceeded', 'unsupported_media_type', 'upload_locked', 'conflict', ...FINISH]),
      },
    },
    delete: {
      tags: ['uploads (tus 1.0)'],
      summary: 'Abandon an unfinished upload (tus termination): its bytes go and its reservation is freed',
      parameters: [TUS_RESUMABLE_REQUEST, METHOD_OVERRIDE],
      responses: {
        '204': { description: 'Removed', headers: { 'Tus-Resumable': TUS_RESUMABLE } },
        ...problems([...COMMON, 'origin_not_allowed', 'not_found', 'conflict', 'upload_locked']),
      },
    },
    get: {
      tags: ['uploads (tus 1.0)'],
      summary: 'Not offered: an upload\'s bytes are never served; share a finished file with a signed link',
      security: [],
      responses: problems(['method_not_allowed']),
    },
  },
};

export const METRICS_PATH = {
  '/metrics': {
    get: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format)',
      description:
        'Readable by a request from this machine straight to the server (loopback, not through a proxy), or by anyone presenting `Authorization: Bearer <METRICS_TOKEN>`.',
      security: [{}, { metrics: [] }],
      responses: {
        '200': { description: 'The metrics', headers: { 'Cache-Control': header('no-store') }, content: { 'text/plain': { schema: { type: 'string' } } } },
        '401': { description: '`invalid_token`: an Authorization header that is not the metrics token', content: { 'application/problem+json': { schema: { $ref: PROBLEM_REF } } } },
        '403': { description: '`forbidden`: neither from this machine directly nor with the metrics token', content: { 'application/problem+json': { schema: { $ref: PROBLEM_REF } } } },
      },
    },
  },
};

export const METRICS_SECURITY_SCHEME = { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' };
