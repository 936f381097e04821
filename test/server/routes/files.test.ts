// Files API: listing (folder filter, newest first, cursor pagination; every file without limit),
// metadata, delete, usage.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, tusUpload } from '../../helpers/tus.ts';

/**
 * A token for a server on an injected clock: it is signed on that clock and verified on the real
 * one, so it lives from the injected date to a day past today, whatever the injected date is.
 */
const tokenOnClock = (server: TestServer, userId: string, clock: number) =>
  server.token(userId, Math.ceil((Date.now() - clock) / 1000) + 86_400);

describe('files API', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  let clock = Date.parse('2026-03-01T10:00:00Z');
  const keys: string[] = [];
  before(async () => {
    server = await startTestServer({ now: () => clock });
    auth = { Authorization: `Bearer ${await tokenOnClock(server, 'erin', clock)}` };
    // Seven files, one second apart, in two folders.
    for (let i = 0; i < 7; i++) {
      clock += 1000;
      const folder = i % 2 === 0 ? 'docs' : 'pics/2026';
      const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from(`file ${i}`), metadata: { filename: `f${i}.txt`, folder } }).done;
      keys.push(fileKey!);
    }
  });
  after(() => server.stop());

  const list = async (query: string) => {
    const res = await fetch(`${server.url}/v1/files/all?${query}`, { headers: auth });
    assert.equal(res.status, 200);
    return (await res.json()) as { files: Array<{ key: string; folder: string }>; next_cursor: string | null };
  };

  test('lists newest first and pages with an opaque cursor without gaps or repeats', async () => {
    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const body = await list(`limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...body.files.map((f) => f.key));
      if (!body.next_cursor) break;
      cursor = body.next_cursor;
    }
    assert.deepEqual(seen, [...keys].reverse());
  });

  test('filters by folder (exact logical folder, leading/trailing slashes ignored)', async () => {
    const docs = await list('folder=docs');
    assert.deepEqual(docs.files.map((f) => f.key), [keys[6], keys[4], keys[2], keys[0]]);
    const pics = await list('folder=/pics/2026/');
    assert.deepEqual(pics.files.map((f) => f.key), [keys[5], keys[3], keys[1]]);
    assert.deepEqual((await list('folder=pics')).files, []);
  });

  test('metadata accepts the key raw or percent-encoded', async () => {
    const raw = await fetch(`${server.url}/v1/files/metadata/${keys[0]}`, { headers: auth });
    const encoded = await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(keys[0]!)}`, { headers: auth });
    assert.equal(raw.status, 200);
    assert.equal(encoded.status, 200);
    const record = await raw.json();
    assert.deepEqual(record, await encoded.json());
    assert.deepEqual(Object.keys(record).sort(), [
      'category', 'content_type', 'created_at', 'detected_type', 'filename', 'folder', 'key', 'scan_signature', 'scan_status',
      'sha256', 'size', 'user_id',
    ]);
    // Text has no signature; none was declared, so the .txt extension names it (text/plain).
    assert.equal(record.detected_type, null);
    assert.equal(record.content_type, 'text/plain');
    assert.equal(record.category, 'document');
    assert.equal(record.scan_status, null, 'no verdict while scanning is off');
    assert.equal(record.created_at, '2026-03-01T10:00:01.000Z');
    assert.match(record.key, /^users\/erin\/2026\/03\/01\/[0-9a-f]{32}\.txt$/);
  });

  test('delete removes bytes and record and frees quota; a second delete is 404', async () => {
    const key = keys[1]!;
    const before = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
    const res = await fetch(`${server.url}/v1/files/${key}`, { method: 'DELETE', headers: auth });
    // 200 with a body: the original server's clients check for 200.
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { deleted: true, key });
    assert.equal(existsSync(path.join(server.dataDir, key)), false);
    const after = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
    assert.equal(after.used_bytes, before.used_bytes - 'file 1'.length);
    assert.equal((await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${server.url}/v1/files/${key}`, { method: 'DELETE', headers: auth })).status, 404);
  });

  test('the service token lists and reads any user with user_id', async () => {
    const headers = { 'X-Service-Token': server.serviceToken };
    const res = await fetch(`${server.url}/v1/files/all?user_id=erin&folder=docs&limit=1`, { headers });
    const body = await res.json();
    assert.equal(body.files[0].key, keys[6]);
    assert.ok(body.next_cursor);
    assert.equal((await fetch(`${server.url}/v1/files/all`, { headers })).status, 400);
    const usage = await (await fetch(`${server.url}/v1/usage?user_id=nobody`, { headers })).json();
    assert.deepEqual(usage, { used_bytes: 0, reserved_bytes: 0, quota_bytes: 10 * 1024 ** 3 });
  });
});

describe('files API: a listing without limit or cursor holds every file', () => {
  // Clients of the original server read one answer of GET /v1/files/all as "all files".
  const COUNT = 1_101; // past the server's internal page (1000 rows)
  let server: TestServer;
  let auth: Record<string, string>;
  const keys: string[] = [];
  let clock = Date.parse('2026-04-01T00:00:00Z');
  before(async () => {
    server = await startTestServer({ now: () => clock });
    auth = { Authorization: `Bearer ${await tokenOnClock(server, 'many', clock)}` };
    // Ten at a time: every finish of one user queues on that user's row of totals, and on
    // PostgreSQL each waits holding one of the instance's eight connections; fifty at once on a
    // loaded machine outwaited the pool's 10 s and were answered 503.
    for (let i = 0; i < COUNT; i += 10) {
      // Several files share a millisecond: order then falls back to the key, as in the paged listing.
      clock += 1;
      const created = await Promise.all(Array.from({ length: Math.min(10, COUNT - i) }, (_, j) =>
        createUpload(server.url, auth, 0, { filename: `f${i + j}.txt`, folder: (i + j) % 3 === 0 ? 'third' : '' })));
      for (const res of created) {
        assert.equal(res.status, 201);
        keys.push(res.headers.get('x-file-key')!);
      }
    }
  });
  after(() => server.stop());

  const paged = async (query: string) => {
    const all: string[] = [];
    let cursor = '';
    for (;;) {
      const body = await (await fetch(`${server.url}/v1/files/all?limit=1000${query}${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth })).json();
      all.push(...body.files.map((f: { key: string }) => f.key));
      if (!body.next_cursor) return all;
      cursor = body.next_cursor;
    }
  };

  test('every file, newest first, in the order the pages give, with next_cursor null', async () => {
    const res = await fetch(`${server.url}/v1/files/all`, { headers: auth });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const body = await res.json();
    assert.equal(body.files.length, COUNT);
    assert.equal(body.next_cursor, null);
    assert.deepEqual(body.files.map((f: { key: string }) => f.key), await paged(''));
    assert.deepEqual(new Set(body.files.map((f: { key: string }) => f.key)), new Set(keys));
    assert.equal(body.files[0].filename.startsWith('f'), true);
  });

  test('with a folder: every file of that folder', async () => {
    const body = await (await fetch(`${server.url}/v1/files/all?folder=third`, { headers: auth })).json();
    assert.equal(body.files.length, Math.ceil(COUNT / 3));
    assert.deepEqual(body.files.map((f: { key: string }) => f.key), await paged('&folder=third'));
  });

  test('limit still pages (1 to 1000), and a cursor without limit gives the default page of 50', async () => {
    const page = await (await fetch(`${server.url}/v1/files/all?limit=7`, { headers: auth })).json();
    assert.equal(page.files.length, 7);
    assert.ok(page.next_cursor);
    const next = await (await fetch(`${server.url}/v1/files/all?cursor=${page.next_cursor}`, { headers: auth })).json();
    assert.equal(next.files.length, 50);
    assert.ok(next.next_cursor);
  });

  test('a user with no files gets an empty list', async () => {
    const other = { Authorization: `Bearer ${await tokenOnClock(server, 'nobody-here', clock)}` };
    assert.deepEqual(await (await fetch(`${server.url}/v1/files/all`, { headers: other })).json(), { files: [], next_cursor: null });
  });
});
