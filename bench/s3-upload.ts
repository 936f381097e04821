// Upload throughput to S3 (a local one-node Swift with s3api, test/support/swift.ts): this server with
// STORAGE=s3 beside bare @tus/server + @tus/s3-store on node:http, in one run, each in its own
// process, alternating rounds; then the server-side copy that finishing costs (CopyObject, and
// UploadPartCopy in parallel parts) for an object of the same size.
//   node --import tsx bench/s3-upload.ts [--size 256MiB] [--chunk 16MiB] [--rounds 3]
// Prints a table and one JSON line (`{"bench":"s3-upload",…}`) for bench/run.ts to collect.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand,
  ListObjectsV2Command, UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { createS3Client, s3ClientConfig } from '../server/storage/s3-client.ts';
import { startSwift, type SwiftServer } from '../test/support/swift.ts';
import { createUpload, uploadAll } from './lib/tus-client.ts';
import { formatSize, mbPerSecond, median, parseSize } from './lib/units.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVICE_TOKEN = 'bench-service-token-0123456789abcdef';
const PART = 8 * 1024 * 1024;

if (process.argv[2] === '--bare') await runBareServer();
else await main();

/** The baseline, in a child process: bare @tus/server + @tus/s3-store (same part size, useTags off). */
async function runBareServer(): Promise<void> {
  const { Server } = await import('@tus/server');
  const { S3Store } = await import('@tus/s3-store');
  const { useContentMd5ForDeleteObjects } = await import('../server/storage/s3-client.ts');
  const env = process.env;
  const store = new S3Store({
    partSize: PART,
    useTags: false,
    s3ClientConfig: {
      ...s3ClientConfig({ endpoint: env.S3_ENDPOINT!, region: env.S3_REGION!, accessKeyId: env.S3_ACCESS_KEY_ID!, secretAccessKey: env.S3_SECRET_ACCESS_KEY!, forcePathStyle: true }),
      bucket: env.S3_BUCKET!,
    },
  });
  useContentMd5ForDeleteObjects((store as unknown as { client: Parameters<typeof useContentMd5ForDeleteObjects>[0] }).client);
  const tus = new Server({ path: '/v1/uploads', datastore: store });
  const server = http.createServer((req, res) => void tus.handle(req, res));
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${port}` }));
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}

async function start(args: string[], env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"listening"|"msg":"listening"[^\n]*"url":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve((match[1] ?? match[2])!);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}:\n${out}`)));
  });
  child.stdout!.resume();
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  await exited;
}

async function main(): Promise<void> {
  const size = parseSize(arg('size', '256MiB'));
  const chunk = parseSize(arg('chunk', '16MiB'));
  const rounds = Number(arg('rounds', '3'));
  const swift: SwiftServer = await startSwift();
  const s3 = createS3Client({ ...swift, forcePathStyle: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sl-bench-s3-'));
  const s3Env = (bucket: string) => ({
    S3_BUCKET: bucket, S3_ENDPOINT: swift.endpoint, S3_REGION: swift.region,
    S3_ACCESS_KEY_ID: swift.accessKeyId, S3_SECRET_ACCESS_KEY: swift.secretAccessKey, S3_FORCE_PATH_STYLE: 'true',
  });
  const ms: Record<'server' | 'bare', number[]> = { server: [], bare: [] };
  let lastKey = '';
  try {
    for (const bucket of ['bench-server', 'bench-bare']) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const server = await start(['server/main.ts'], {
      ...s3Env('bench-server'), STORAGE: 's3', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info',
      AUTH_SERVICE_TOKEN: SERVICE_TOKEN, QUOTA_DEFAULT_BYTES: String(size * rounds * 2),
    });
    const bare = await start([fileURLToPath(import.meta.url), '--bare'], s3Env('bench-bare'));
    const agent = new http.Agent({ keepAlive: true });
    try {
      for (let round = 0; round < rounds; round++) {
        for (const [name, target, headers] of [
          ['server', server.url, { 'X-Service-Token': SERVICE_TOKEN }],
          ['bare', bare.url, {}],
        ] as const) {
          const t0 = performance.now();
          const upload = await createUpload(target, headers, size, `bench-${round}.bin`, agent);
          const last = await uploadAll(upload, size, chunk, agent);
          ms[name].push(performance.now() - t0);
          if (name === 'server') lastKey = String(last.reply.headers['x-file-key'] ?? '');
        }
      }
    } finally {
      agent.destroy();
      await Promise.all([stop(server.child), stop(bare.child)]);
    }

    // What finishing costs on its own: server-side copies of an object of `size` bytes.
    const copyMs = { single: [] as number[], parts: [] as number[] };
    const source = `bench-server/${lastKey}`;
    if (!lastKey) throw new Error('the server did not answer X-File-Key');
    for (let round = 0; round < rounds; round++) {
      let t0 = performance.now();
      await s3.send(new CopyObjectCommand({ Bucket: 'bench-server', Key: `copy-${round}`, CopySource: source }));
      copyMs.single.push(performance.now() - t0);
      t0 = performance.now();
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bench-server', Key: `pcopy-${round}` }));
      const partBytes = Math.max(5 * 1024 * 1024, Math.ceil(size / 8));
      const parts = await Promise.all(
        Array.from({ length: Math.ceil(size / partBytes) }, async (_, i) => {
          const range = `bytes=${i * partBytes}-${Math.min(size, (i + 1) * partBytes) - 1}`;
          const res = await s3.send(new UploadPartCopyCommand({ Bucket: 'bench-server', Key: `pcopy-${round}`, UploadId, PartNumber: i + 1, CopySource: source, CopySourceRange: range }));
          return { PartNumber: i + 1, ETag: res.CopyPartResult!.ETag! };
        }),
      );
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'bench-server', Key: `pcopy-${round}`, UploadId, MultipartUpload: { Parts: parts } }));
      copyMs.parts.push(performance.now() - t0);
    }
    const leftovers = (await s3.send(new ListObjectsV2Command({ Bucket: 'bench-server', Delimiter: '/' }))).Contents?.filter((o) => /^[0-9a-f]{32}/.test(o.Key!)).length ?? 0;

    const rate = (list: number[]) => mbPerSecond(size, median(list));
    const serverRate = rate(ms.server);
    const bareRate = rate(ms.bare);
    console.log(`S3 upload of ${formatSize(size)} in ${formatSize(chunk)} PATCHes, ${rounds} rounds (median), Swift s3api on loopback`);
    console.log(`  this server (STORAGE=s3, hooks, SHA-256, finish incl. copy): ${serverRate.toFixed(1)} MB/s  (${ms.server.map((m) => (m / 1000).toFixed(2)).join(', ')} s)`);
    console.log(`  bare @tus/server + @tus/s3-store on node:http:              ${bareRate.toFixed(1)} MB/s  (${ms.bare.map((m) => (m / 1000).toFixed(2)).join(', ')} s)`);
    console.log(`  ratio server/bare: ${(serverRate / bareRate).toFixed(2)}`);
    console.log(`  server-side copy of ${formatSize(size)}: CopyObject ${(median(copyMs.single) / 1000).toFixed(2)} s, UploadPartCopy ×${Math.ceil(size / Math.max(5 * 1024 * 1024, Math.ceil(size / 8)))} parallel ${(median(copyMs.parts) / 1000).toFixed(2)} s`);
    console.log(`  upload objects left in the server's bucket after finishing: ${leftovers}`);
    console.log(JSON.stringify({
      bench: 's3-upload', size, chunk, rounds, server_mb_s: serverRate, bare_mb_s: bareRate, ratio: serverRate / bareRate,
      copy_object_s: median(copyMs.single) / 1000, upload_part_copy_s: median(copyMs.parts) / 1000,
    }));
  } finally {
    s3.destroy();
    await swift.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
