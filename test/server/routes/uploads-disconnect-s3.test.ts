// A PATCH cut mid-body on S3 keeps the bytes the server took in (docs/limits.md, "A connection that
// is cut"): HEAD reports them, the client resumes from there, and the finished file's bytes and
// SHA-256 are the ones sent. @tus/s3-store gathers a part's bytes in a file under the OS temp
// directory before uploading it; this file gives the server a temp directory of its own, so a test
// can wait until that file holds every byte it sent before cutting, and then expect exactly them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Storage } from '../../../server/storage/s3.ts';
import { SERVICE_TOKEN, spawnServer, startTestServer, tempDir, type TestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, patchUpload, tusUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';
import { ownTmpDir, partFiles } from '../../helpers/upload-bytes-held.ts';

const tmp = ownTmpDir('sl-s3-cut-');

type Cut = 'close' | 'reset' | 'half-close';
const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface CutRequest {
  method: 'PATCH' | 'POST';
  path: string;
  headers: Record<string, string>;
  /** Content-Length: the whole body the request announces. */
  length: number;
  /** What is sent before the cut. */
  sent: Buffer;
  /** The upload's offset when the request starts, and the part size: where the sent bytes land. */
  offset: number;
  partSize: number;
  /** The server's temp directory. */
  tmp?: string;
  /** Sent as one chunk of a chunked body (no Content-Length, no last chunk). */
  chunked?: boolean;
  /** Of `sent`, the bytes the server is expected to take in (default: all). */
  taken?: number;
}

/**
 * Sends a request's head and `sent`, and resolves once the server holds all of `sent` in the part
 * it is gathering (the `.part` it prepends included); the connection stays open.
 */
async function sendPart(base: string, r: CutRequest): Promise<net.Socket> {
  const { hostname, port } = new URL(base);
  const before = new Set(partFiles(r.tmp).keys());
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.resume();
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const head = [
    `${r.method} ${r.path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Tus-Resumable: 1.0.0',
    ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`),
    'Content-Type: application/offset+octet-stream', r.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${r.length}`, '', '',
  ].join('\r\n');
  await new Promise<void>((resolve) => socket.write(head, () => resolve()));
  const body = r.chunked ? Buffer.concat([Buffer.from(`${r.sent.length.toString(16)}\r\n`), r.sent, Buffer.from('\r\n')]) : r.sent;
  await new Promise<void>((resolve) => socket.write(body, () => resolve()));
  // The bytes of the part being gathered: from the part's start up to the last byte taken in.
  const inPart = ((r.offset % r.partSize) + (r.taken ?? r.sent.length) - 1) % r.partSize + 1;
  await until(`the server to hold ${inPart} bytes of its part`, () =>
    [...partFiles(r.tmp)].some(([name, size]) => !before.has(name) && size === inPart));
  return socket;
}

/** `sendPart`, then the connection is cut `cut`'s way. */
async function cutRequest(base: string, r: CutRequest & { cut: Cut }): Promise<void> {
  const socket = await sendPart(base, r);
  if (r.cut === 'reset') return void socket.resetAndDestroy();
  if (r.cut === 'close') return void socket.destroy();
  // Half-close: our FIN, then the server closes its side (the body can never be completed).
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.end();
  await closed;
}

describe('a PATCH cut mid-body on S3 keeps the bytes the server took in', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  let partSize: number;
  before(async () => {
    server = await startTestServer({ storage: 's3' });
    auth = { Authorization: `Bearer ${await server.token('jack')}` };
    partSize = (server.services.storage as S3Storage).tusStore.partSize;
  });
  after(async () => {
    await server.stop();
  });

  async function newUpload(length: number): Promise<string> {
    const res = await createUpload(server.url, auth, length, { filename: 'cut.bin' });
    assert.equal(res.status, 201, await res.text());
    return res.headers.get('location')!;
  }

  async function cutPatch(url: string, data: Buffer, offset: number, sent: number, cut: Cut): Promise<void> {
    await cutRequest(server.url, {
      method: 'PATCH', path: new URL(url).pathname, headers: { ...auth, 'Upload-Offset': String(offset) },
      length: data.length - offset, sent: data.subarray(offset, offset + sent), offset, partSize, cut,
    });
  }

  async function offsetOf(url: string): Promise<number> {
    const head = await headUpload(url, auth);
    assert.equal(head.status, 200, head.headers.get('content-type') ?? '');
    return Number(head.headers.get('upload-offset'));
  }

  /** Sends the rest with a raw PATCH; the file must hold exactly `data`, with its SHA-256. */
  async function finishAndCheck(url: string, data: Buffer, offset: number): Promise<void> {
    const res = await patchUpload(url, auth, offset, data.subarray(offset));
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const record = JSON.parse(text) as { key: string; size: number; sha256: string };
    assert.equal(record.size, data.length);
    assert.equal(record.sha256, sha256(data));
    const stored = await server.readStored(record.key);
    assert.ok(stored?.equals(data), 'the stored file differs from the bytes sent');
  }

  for (const cut of ['close', 'reset', 'half-close'] as Cut[]) {
    test(`cut by ${cut} after 1 MiB of 3 MiB: HEAD reports the 1 MiB, the resumed file is the one sent`, async () => {
      const data = randomBytes(3 * MiB);
      const url = await newUpload(data.length);
      await cutPatch(url, data, 0, MiB, cut);
      assert.equal(await offsetOf(url), MiB);
      await finishAndCheck(url, data, MiB);
    });
  }

  test('cut exactly at a part boundary: the full part is kept', async () => {
    const data = randomBytes(partSize + MiB);
    const url = await newUpload(data.length);
    await cutPatch(url, data, 0, partSize, 'reset');
    assert.equal(await offsetOf(url), partSize);
    await finishAndCheck(url, data, partSize);
  });

  test('cut just past a part boundary, while that part uploads; resumed after a restart', async () => {
    const data = randomBytes(partSize + 2 * MiB);
    const url = await newUpload(data.length);
    const sent = partSize + 100 * 1024;
    await cutPatch(url, data, 0, sent, 'close');
    assert.equal(await offsetOf(url), sent);
    // A new process has no hash state in memory: it rebuilds it from what S3 holds.
    await server.stop({ keepData: true });
    server = await startTestServer({ storage: 's3', dataDir: server.dataDir });
    await finishAndCheck(`${server.url}${new URL(url).pathname}`, data, sent);
  });

  test('a cut creation-with-upload leaves nothing behind: its client never learnt the URL', async () => {
    const data = randomBytes(partSize + MiB);
    const storage = server.services.storage;
    const known = new Set(await storage.listUploadIds());
    await cutRequest(server.url, {
      method: 'POST', path: '/v1/uploads', headers: { ...auth, 'Upload-Length': String(data.length) },
      length: data.length, sent: data.subarray(0, partSize - MiB), offset: 0, partSize, cut: 'reset',
    });
    // The request has ended once it gave back its slot (after the upload was discarded).
    await until('the cut creation to end', () => server.services.lifecycle.requests.inFlight('jack') === 0);
    assert.deepEqual((await storage.listUploadIds()).filter((id) => !known.has(id)), []);
  });

  test('two cuts in a row: the second keeps the first one\'s bytes too; tus-js-client resumes', async () => {
    const data = randomBytes(4 * MiB);
    const url = await newUpload(data.length);
    await cutPatch(url, data, 0, MiB, 'half-close');
    assert.equal(await offsetOf(url), MiB);
    await cutPatch(url, data, MiB, MiB + 12_345, 'reset');
    const offset = await offsetOf(url);
    assert.equal(offset, 2 * MiB + 12_345);
    let resumedFrom: number | undefined;
    const { done } = tusUpload({
      endpoint: server.url, headers: auth, data, uploadUrl: url,
      onProgress: (sent) => (resumedFrom ??= sent),
    });
    const result = await done;
    assert.ok(resumedFrom !== undefined && resumedFrom >= offset, 'tus-js-client did not resume from the stored offset');
    const record = JSON.parse(result.body) as { key: string; sha256: string };
    assert.equal(record.sha256, sha256(data));
    assert.ok((await server.readStored(record.key))?.equals(data));
  });

  test('a body that breaks after the last byte of the upload does not complete it: HEAD reports one byte less', async () => {
    const data = randomBytes(MiB);
    const url = await newUpload(data.length);
    // tus answers such a request as failed and never runs what follows the last byte.
    await cutRequest(server.url, {
      method: 'PATCH', path: new URL(url).pathname, headers: { ...auth, 'Upload-Offset': '0' },
      length: data.length, sent: data, offset: 0, partSize, chunked: true, taken: data.length - 1, cut: 'reset',
    });
    assert.equal(await offsetOf(url), data.length - 1);
    await finishAndCheck(url, data, data.length - 1);
  });

  test('a PATCH still streaming when the server stops is cut at the grace bound, and what it sent is kept', async () => {
    const dataDir = tempDir();
    const serverTmp = mkdtempSync(path.join(tmp, 'spawned-'));
    let spawned = await spawnServer(dataDir, { SHUTDOWN_GRACE_SECONDS: '1', TMPDIR: serverTmp }, 's3');
    try {
      const minted = await fetch(`${spawned.url}/v1/files/generate-token?user_id=sam&expires_hours=1`, {
        method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN },
      });
      const sam = { Authorization: `Bearer ${(await minted.json()).token}` };
      const data = randomBytes(3 * MiB);
      const created = await createUpload(spawned.url, sam, data.length, { filename: 'stopped.bin' });
      const uploadPath = new URL(created.headers.get('location')!).pathname;
      const socket = await sendPart(spawned.url, {
        method: 'PATCH', path: uploadPath, headers: { ...sam, 'Upload-Offset': '0' },
        length: data.length, sent: data.subarray(0, MiB), offset: 0, partSize, tmp: serverTmp,
      });
      socket.on('error', () => {});
      assert.equal(await spawned.kill('SIGTERM'), 0, spawned.output());
      socket.destroy();

      spawned = await spawnServer(dataDir, {}, 's3');
      const url = `${spawned.url}${uploadPath}`;
      const head = await headUpload(url, sam);
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers.get('upload-offset')), MiB, 'every byte the server took in before the stop was kept');
      const res = await patchUpload(url, sam, MiB, data.subarray(MiB));
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal((JSON.parse(text) as { sha256: string }).sha256, sha256(data));
    } finally {
      await spawned.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
