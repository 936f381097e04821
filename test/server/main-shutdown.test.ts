// Graceful shutdown of a real server process: SIGTERM stops accepting, lets an in-flight upload
// finish within SHUTDOWN_GRACE_SECONDS, cuts one that outlives the bound so that its client can
// resume after a restart, and closes SQLite cleanly (the WAL is checkpointed away).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { openTestStorage, readUploadBytes, spawnServer, tempDir, SERVICE_TOKEN, type SpawnedServer } from '../helpers/server.ts';
import { headUpload, metadataHeader, tusUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { uploadBytesHeld } from '../helpers/upload-bytes-held.ts';

const MiB = 1024 * 1024;
const service = { 'X-Service-Token': SERVICE_TOKEN };
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SlowPatch {
  /** Sends the rest of the body. */
  finish(): void;
  response: Promise<{ status: number; headers: http.IncomingHttpHeaders } | { error: string }>;
}

/** A PATCH that sends `first` bytes of `data` now and the rest only when told to. */
function slowPatch(url: string, data: Buffer, first: number): SlowPatch {
  const req = http.request(url, {
    method: 'PATCH',
    headers: { ...service, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(data.length) },
  });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders } | { error: string }>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', (error) => resolve({ error: (error as NodeJS.ErrnoException).code ?? error.message }));
  });
  req.write(data.subarray(0, first));
  return { finish: () => req.end(data.subarray(first)), response };
}

async function createUpload(base: string, length: number, filename: string): Promise<string> {
  const res = await fetch(`${base}/v1/uploads`, {
    method: 'POST',
    headers: { ...service, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(length), 'Upload-Metadata': metadataHeader({ user_id: 'sam', filename }) },
  });
  assert.equal(res.status, 201);
  return new URL(res.headers.get('location')!).pathname;
}

/**
 * Waits until the server holds `atLeast` bytes of the PATCH streaming in: in the upload's file on
 * local disk, in the part file in its TMPDIR on S3 (always so on PostgreSQL).
 */
async function held(server: SpawnedServer, dataDir: string, tmpDir: string, uploadPath: string, atLeast: number): Promise<void> {
  await until(`the server to hold ${atLeast} bytes`, () => uploadBytesHeld({ dataDir, storage: server.storage, tmpDir }, uploadPath) >= atLeast);
}

async function refusesConnections(base: string): Promise<boolean> {
  try {
    await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
    return false;
  } catch {
    return true;
  }
}

describe('graceful shutdown (SIGTERM)', () => {
  test('an upload in flight finishes within the grace period; new connections are refused meanwhile', async () => {
    const dataDir = tempDir();
    const tmpDir = tempDir('sl-shutdown-tmp-');
    try {
      const server = await spawnServer(dataDir, { SHUTDOWN_GRACE_SECONDS: '10', TMPDIR: tmpDir });
      const data = randomBytes(4 * MiB);
      const uploadPath = await createUpload(server.url, data.length, 'in-flight.bin');
      const patch = slowPatch(`${server.url}${uploadPath}`, data, MiB);
      await held(server, dataDir, tmpDir, uploadPath, MiB);

      const started = Date.now();
      const exited = server.kill('SIGTERM');
      await sleep(300);
      assert.ok(await refusesConnections(server.url), 'a new connection after SIGTERM is refused');
      patch.finish();
      const answer = await patch.response;
      assert.ok('status' in answer, `the in-flight PATCH got an answer, not ${JSON.stringify(answer)}`);
      assert.equal(answer.status, 200, 'the last PATCH finishes the upload');
      assert.ok(answer.headers['x-file-key'], 'and records the file');
      assert.equal(answer.headers.connection, 'close', 'during the drain, connections are not kept alive');
      assert.equal(await exited, 0);
      assert.ok(Date.now() - started < 5000, `exited as soon as the request was done (${Date.now() - started} ms)`);
      assert.ok(!existsSync(path.join(dataDir, 'stream-line.sqlite-wal')), 'SQLite closed cleanly: the WAL was checkpointed and removed');
      assert.match(server.output(), /"msg":"shutdown complete"/);

      const again = await spawnServer(dataDir);
      try {
        const key = answer.headers['x-file-key'] as string;
        const meta = await fetch(`${again.url}/v1/files/metadata/${key}?user_id=sam`, { headers: service });
        assert.equal((await meta.json()).sha256, sha256(data));
      } finally {
        await again.kill();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  test('an upload outliving the bound is cut at it, and its client resumes after the restart', async () => {
    const dataDir = tempDir();
    const tmpDir = tempDir('sl-shutdown-tmp-');
    try {
      const server = await spawnServer(dataDir, { SHUTDOWN_GRACE_SECONDS: '1', TMPDIR: tmpDir });
      const data = randomBytes(6 * MiB);
      const uploadPath = await createUpload(server.url, data.length, 'cut.bin');
      const patch = slowPatch(`${server.url}${uploadPath}`, data, 2 * MiB);
      await held(server, dataDir, tmpDir, uploadPath, 2 * MiB);

      const started = Date.now();
      const code = await server.kill('SIGTERM');
      const took = Date.now() - started;
      assert.equal(code, 0, server.output());
      assert.ok(took >= 900 && took < 4000, `cut at the 1 s bound (exited after ${took} ms)\n${server.output()}`);
      const answer = await patch.response;
      assert.ok('error' in answer, `the stalled PATCH was cut: ${JSON.stringify(answer)}`);
      assert.ok(!existsSync(path.join(dataDir, 'stream-line.sqlite-wal')), 'SQLite closed cleanly after the cut');
      assert.match(server.output(), /"msg":"shutdown: cutting requests still in flight"/);

      const again = await spawnServer(dataDir);
      try {
        const url = `${again.url}${uploadPath}`;
        const head = await headUpload(url, service);
        assert.equal(head.status, 200);
        const offset = Number(head.headers.get('upload-offset'));
        assert.equal(offset, 2 * MiB, 'every byte that arrived before the cut was kept');
        const id = uploadPath.split('/').pop()!;
        const storage = await openTestStorage(dataDir, again.storage);
        assert.ok((await readUploadBytes(storage, id))?.equals(data.subarray(0, offset)), 'the kept bytes are the ones sent');
        const usage = await (await fetch(`${again.url}/v1/usage?user_id=sam`, { headers: service })).json();
        assert.equal(usage.reserved_bytes, data.length, 'the reservation survived the cut');

        const result = await tusUpload({ endpoint: again.url, headers: service, data, uploadUrl: url, chunkSize: 2 * MiB }).done;
        assert.equal(JSON.parse(result.body).sha256, sha256(data));
      } finally {
        await again.kill();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });
});
