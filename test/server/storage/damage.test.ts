// Damaged or missing bytes behind a ready record (docs/storage-check.md), on both backends over real
// HTTP: a download never hangs (problem+json before the status line; a file that shrinks while it
// is read cuts the connection), the record is marked (out of listings, usage, new links and
// archives), /healthz and sl_files_damaged_total report it, and `npm run check-storage` finds and
// repairs every kind of mismatch.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { truncateSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Storage } from '../../../server/storage/s3.ts';
import { expectProblem } from '../../helpers/problem.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { ROOT, serverEnv, startTestServer, type TestServer } from '../../helpers/server.ts';
import { tusUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';
import { metric } from '../../helpers/webhook-receiver.ts';
import { readWithYauzl } from '../../helpers/zip.ts';

/** Puts `bytes` at `key` behind the server's back (null: removes them), on either backend. */
async function replaceStored(server: TestServer, key: string, bytes: Buffer | null): Promise<void> {
  if (server.storage === 'file') {
    const file = path.join(server.dataDir, key);
    if (bytes === null) await rm(file, { force: true });
    else {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, bytes);
    }
    return;
  }
  const s3 = server.services.storage as S3Storage;
  await s3.client.send(bytes === null ? new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }) : new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }));
}

/** A GET that settles either way: the status and body, or how the body failed. Never waits forever on its own. */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; error: string | null }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), error: null }));
      res.on('error', (e) => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), error: e.message }));
      res.on('close', () => {
        if (!res.complete) resolve({ status: res.statusCode!, body: Buffer.concat(chunks), error: 'closed before the end' });
      });
    }).on('error', reject);
  });
}

for (const backend of backendsUnderTest()) {
  describe(`damaged or missing stored bytes (${backend})`, () => {
    let server: TestServer;
    let auth: Record<string, string>;

    before(async () => {
      server = await startTestServer({ storage: backend });
      auth = { Authorization: `Bearer ${await server.token('dana', 86400)}` };
    });
    after(() => server.stop());

    const upload = async (data: Buffer, filename: string) =>
      (await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename } }).done).fileKey!;
    const linkOf = async (key: string) => {
      const res = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth });
      assert.equal(res.status, 200);
      return (await res.json()).url as string;
    };
    const listed = async () => ((await (await fetch(`${server.url}/v1/files/all?limit=100`, { headers: auth })).json()).files as Array<{ key: string }>).map((f) => f.key);
    const used = async () => (await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json()).used_bytes as number;
    const health = async () => (await (await fetch(`${server.url}/healthz`)).json()) as { status: string; files?: { damaged: number } };

    test('a truncated file answers file_damaged on GET, HEAD and a range past its new end, and is marked', async () => {
      const data = randomBytes(200_000);
      const key = await upload(data, 'short.bin');
      const link = await linkOf(key);
      const usedBefore = await used();
      const damagedBefore = await metric(server.url, 'sl_files_damaged_total{damage="size_mismatch"}');
      await replaceStored(server, key, data.subarray(0, 50_000));

      await expectProblem(await fetch(link), 500, 'file_damaged', 'full GET');
      await expectProblem(await fetch(link, { headers: { Range: 'bytes=100000-' } }), 500, 'file_damaged', 'range past the new end');
      await expectProblem(await fetch(link, { headers: { Range: 'bytes=0-9' } }), 500, 'file_damaged', 'range inside the new end');
      assert.equal((await fetch(link, { method: 'HEAD' })).status, 500);

      assert.ok(!(await listed()).includes(key), 'left out of the listing');
      assert.equal(await used(), usedBefore - data.length, 'no longer charged');
      const minted = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth });
      await expectProblem(minted, 500, 'file_damaged', 'new link');
      const batch = await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ keys: [key] }) });
      await expectProblem(batch, 500, 'file_damaged', 'new batch');
      const h = await health();
      assert.equal(h.status, 'ok', 'one damaged file does not take the instance out');
      assert.ok((h.files?.damaged ?? 0) >= 1);
      assert.equal(await metric(server.url, 'sl_files_damaged_total{damage="size_mismatch"}'), damagedBefore + 1, 'counted once');

      // The bytes come back (a restore): the next download serves them and the mark goes.
      await replaceStored(server, key, data);
      const res = await fetch(link);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
      assert.ok((await listed()).includes(key));
      assert.equal(await used(), usedBefore);
    });

    test('vanished bytes answer file_missing; a batch link made before leaves the file out with a note', async () => {
      const keep = randomBytes(30_000);
      const keepKey = await upload(keep, 'keep.bin');
      const goneKey = await upload(randomBytes(30_000), 'gone.bin');
      const minted = await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ keys: [keepKey, goneKey] }) });
      const zipUrl = (await minted.json()).url as string;
      const link = await linkOf(goneKey);
      await replaceStored(server, goneKey, null);

      const zip = await fetch(zipUrl);
      assert.equal(zip.status, 200);
      const body = Buffer.from(await zip.arrayBuffer());
      assert.equal(zip.headers.get('content-length'), String(body.length));
      const file = path.join(server.dataDir, 'missing-batch.zip');
      await writeFile(file, body);
      const entries = new Map((await readWithYauzl(file)).map((e) => [e.name, e.data]));
      assert.deepEqual([...entries.keys()].sort(), ['MISSING.txt', 'keep.bin']);
      assert.ok(entries.get('keep.bin')!.equals(keep));
      assert.ok(!(await listed()).includes(goneKey), 'the batch download marked it');

      await expectProblem(await fetch(link), 410, 'file_missing', 'GET');
      assert.equal((await fetch(link, { method: 'HEAD' })).status, 410);
      // Its owner can still delete the record; then it is simply gone.
      assert.equal((await fetch(`${server.url}/v1/files/${goneKey}`, { method: 'DELETE', headers: auth })).status, 200);
      await expectProblem(await fetch(link), 404, 'not_found', 'after delete');
    });

    test('npm run check-storage reports and repairs records without bytes, size mismatches and bytes without records', async () => {
      // Its own server and DATA_DIR: the report must list exactly what this test did.
      const own = await startTestServer({ storage: backend });
      try {
        const ownAuth = { Authorization: `Bearer ${await own.token('ivo', 86400)}` };
        const put = async (data: Buffer, filename: string) =>
          (await tusUpload({ endpoint: own.url, headers: ownAuth, data, metadata: { filename } }).done).fileKey!;
        const fine = await put(randomBytes(1000), 'fine.bin');
        const lost = await put(randomBytes(2000), 'lost.bin');
        const shrunk = await put(randomBytes(3000), 'shrunk.bin');
        const orphan = fine.replace(/[0-9a-f]{32}/, 'f'.repeat(32));
        await replaceStored(own, lost, null);
        await replaceStored(own, shrunk, randomBytes(10));
        await replaceStored(own, orphan, randomBytes(77));
        const usage = async () => (await (await fetch(`${own.url}/v1/usage`, { headers: ownAuth })).json()).used_bytes as number;
        assert.equal(await usage(), 6000, 'before any check, the records are charged');

        const env = { ...process.env, ...(await serverEnv(own.dataDir, backend)) };
        const run = (...args: string[]) =>
          promisify(execFile)(process.execPath, ['--import', 'tsx', 'server/check-storage-cli.ts', '--json', ...args], { cwd: ROOT, env }).then(
            (r) => ({ code: 0, report: JSON.parse(r.stdout) }),
            (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, report: e.stdout ? JSON.parse(e.stdout) : e.stderr }),
          );
        type Finding = { key: string; problem: string; action: string; stored_size: number | null; recorded_size: number | null };
        const byKey = (findings: Finding[]) => new Map(findings.map((f) => [f.key, f]));

        const report = await run();
        assert.equal(report.code, 1, 'findings left: exit 1');
        const found = byKey(report.report.findings);
        assert.deepEqual([...found.keys()].sort(), [lost, orphan, shrunk].sort());
        assert.equal(found.get(lost)!.problem, 'missing');
        assert.equal(found.get(shrunk)!.problem, 'size_mismatch');
        assert.equal(found.get(shrunk)!.stored_size, 10);
        assert.equal(found.get(orphan)!.problem, 'bytes_without_record');
        assert.deepEqual(report.report.usage, [{ user_id: 'ivo', before: 6000, after: 1000 }]);
        assert.equal(await usage(), 6000, 'a report changes nothing');
        assert.notEqual(await own.readStored(orphan), null);

        const recent = await run('--repair');
        assert.equal(recent.code, 1, 'the orphan is younger than the default minimum age');
        assert.equal(byKey(recent.report.findings).get(orphan)!.action, 'kept_too_recent');

        const repaired = await run('--repair', '--orphan-min-age-minutes', '0');
        assert.equal(repaired.code, 0);
        const actions = byKey(repaired.report.findings);
        assert.equal(actions.get(orphan)!.action, 'removed');
        assert.equal(actions.get(lost)!.action, 'marked');
        assert.equal(actions.get(shrunk)!.action, 'marked');
        assert.equal(await own.readStored(orphan), null, 'orphan bytes removed');
        assert.equal(await usage(), 1000, 'usage recomputed without the damaged files');
        const files = ((await (await fetch(`${own.url}/v1/files/all`, { headers: ownAuth })).json()).files as Array<{ key: string }>).map((f) => f.key);
        assert.deepEqual(files, [fine]);
        assert.equal((await (await fetch(`${own.url}/healthz`)).json()).files.damaged, 2);

        const again = await run();
        assert.equal(again.code, 0, 'nothing left to repair');
      } finally {
        await own.stop();
      }
    });

    if (backend === 'file') {
      test('a file that shrinks while it is sent cuts the connection instead of hanging, and is marked', async () => {
        const data = randomBytes(32 * 1024 * 1024);
        const key = await upload(data, 'shrinking.bin');
        const link = await linkOf(key);
        const result = await new Promise<{ status: number; received: number; error: string | null }>((resolve, reject) => {
          http.get(link, { agent: false }, (res) => {
            let received = 0;
            // Headers are out, most of the file is not: shrink it now, then read on.
            truncateSync(path.join(server.dataDir, key), 1024 * 1024);
            res.on('data', (c: Buffer) => void (received += c.length));
            res.on('end', () => resolve({ status: res.statusCode!, received, error: null }));
            res.on('error', (e) => resolve({ status: res.statusCode!, received, error: e.message }));
            res.on('close', () => {
              if (!res.complete) resolve({ status: res.statusCode!, received, error: 'closed before the end' });
            });
          }).on('error', reject);
        });
        assert.equal(result.status, 200);
        assert.ok(result.error !== null, 'the body fails');
        assert.ok(result.received < data.length);
        await until('the record is marked', async () => !(await listed()).includes(key));
        await expectProblem(await fetch(link), 500, 'file_damaged', 'next GET');
      });

      test('a batch ZIP whose entry shrinks while it streams fails the response instead of hanging', async () => {
        const first = randomBytes(32 * 1024 * 1024);
        const firstKey = await upload(first, 'first.bin');
        const secondKey = await upload(randomBytes(8 * 1024 * 1024), 'second.bin');
        const minted = await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ keys: [firstKey, secondKey] }) });
        const zipUrl = (await minted.json()).url as string;
        const result = await new Promise<{ status: number; error: string | null; complete: boolean }>((resolve, reject) => {
          http.get(zipUrl, { agent: false }, (res) => {
            // The second entry is opened only after the first 32 MiB went out.
            truncateSync(path.join(server.dataDir, secondKey), 1000);
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, error: null, complete: res.complete }));
            res.on('error', (e) => resolve({ status: res.statusCode!, error: e.message, complete: false }));
            res.on('close', () => {
              if (!res.complete) resolve({ status: res.statusCode!, error: 'closed before the end', complete: false });
            });
          }).on('error', reject);
        });
        assert.equal(result.status, 200);
        assert.equal(result.complete, false, 'never a complete-looking archive');
        await until('the short entry is marked', async () => !(await listed()).includes(secondKey));
        assert.equal((await rawGet(await linkOf(firstKey))).body.length, first.length, 'the server keeps serving');
      });
    }
  });
}
