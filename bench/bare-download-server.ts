// The ceiling for any download Node decides: a bare node:http server that answers GET and HEAD of
// one file with nothing between the bytes and the socket. `/file/<path under ROOT>` pipes
// fs.createReadStream(file, { highWaterMark: 1 MiB }); `/s3/<key>` pipes the Body of one
// GetObject (S3_* variables, path-style). A single `Range: bytes=a-b` is honoured, so ranges are
// compared like for like. No auth, no signature, no validators, no log line.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../server/storage/s3-client.ts';
import { listenAndAnnounce } from './lib/listen.ts';

const ROOT = process.env.BARE_ROOT ?? process.cwd();
const env = process.env;
const s3 = env.S3_ENDPOINT
  ? createS3Client({ endpoint: env.S3_ENDPOINT, region: env.S3_REGION ?? 'us-east-1', accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY, forcePathStyle: true })
  : null;

function range(header: string | undefined, size: number): { start: number; end: number } | null {
  const m = /^bytes=(\d+)-(\d+)$/.exec(header ?? '');
  return m ? { start: Number(m[1]), end: Math.min(Number(m[2]), size - 1) } : null;
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = decodeURIComponent(req.url ?? '/');
  let size: number;
  let file: string;
  if (url.startsWith('/file/')) {
    file = path.join(ROOT, url.slice('/file/'.length));
    size = statSync(file).size;
  } else if (url.startsWith('/s3/') && s3) {
    // One request to S3 per download, as the server makes: GetObject's own length and range.
    const key = url.slice('/s3/'.length);
    const asked = /^bytes=\d+-\d+$/.test(req.headers.range ?? '') ? req.headers.range : undefined;
    if (req.method === 'HEAD') {
      const head = await s3.send(new HeadObjectCommand({ Bucket: env.S3_BUCKET!, Key: key }));
      res.writeHead(200, { 'Content-Length': head.ContentLength ?? 0, 'Accept-Ranges': 'bytes' }).end();
      return;
    }
    const got = await s3.send(new GetObjectCommand({ Bucket: env.S3_BUCKET!, Key: key, ...(asked ? { Range: asked } : {}) }));
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', 'Content-Length': got.ContentLength ?? 0 };
    if (got.ContentRange) headers['Content-Range'] = got.ContentRange;
    res.writeHead(got.ContentRange ? 206 : 200, headers);
    const body = got.Body as Readable;
    body.pipe(res);
    res.once('close', () => body.destroy());
    return;
  } else {
    res.writeHead(404).end();
    return;
  }
  const r = range(req.headers.range, size);
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', 'Content-Length': r ? r.end - r.start + 1 : size };
  if (r) headers['Content-Range'] = `bytes ${r.start}-${r.end}/${size}`;
  res.writeHead(r ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const body = createReadStream(file, { ...(r ?? {}), highWaterMark: 1024 * 1024 });
  body.pipe(res);
  res.once('close', () => body.destroy());
}

const server = http.createServer((req, res) => {
  answer(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});

listenAndAnnounce(server);
