// The JSON API's handlers and their validation load on first use (server/routes/lazy-routes.ts):
// a server that only takes uploads never loads them, a first request to each route succeeds and is
// labelled by its route as before, and a load that fails answers 500 problem+json with a log line
// while every other route keeps serving.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { ROOT, SERVICE_TOKEN, spawnServer, startTestServer, tempDir, type SpawnedServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, patchUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';

const service = { 'X-Service-Token': SERVICE_TOKEN };

describe('a server whose JSON API cannot load', () => {
  let server: SpawnedServer;
  let dataDir: string;
  before(async () => {
    dataDir = tempDir('sl-lazy-');
    // zod is the JSON API's validation, and nothing else's.
    server = await spawnServer(dataDir, { NODE_OPTIONS: `--import ${path.join(ROOT, 'test/support/refuse-imports.mjs')}`, REFUSE_IMPORTS: 'zod' });
  });
  after(async () => {
    await server?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('starts and takes uploads; requests to the files API answer 500 problem+json, each logged with the cause', async () => {
    const data = randomBytes(64 * 1024);
    const created = await createUpload(server.url, service, data.length, { filename: 'a.bin', user_id: 'alice' });
    assert.equal(created.status, 201, await created.text());
    const patched = await patchUpload(new URL(created.headers.get('location')!, server.url).href, service, 0, data);
    assert.equal(patched.status, 200, await patched.text());

    for (let attempt = 1; attempt <= 2; attempt++) {
      await expectProblem(await fetch(`${server.url}/v1/files/all?user_id=alice`, { headers: service }), 500, 'internal');
      const logged = await until('the failed load to be logged', () => {
        const lines = server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        const failures = lines.filter((l) => l.msg === 'request failed' && JSON.stringify(l.err).includes('refused by test/support/refuse-imports.mjs'));
        const requests = lines.filter((l) => l.msg === 'request' && l.route === '/v1/files/all' && l.status === 500);
        return failures.length === attempt && requests.length === attempt ? failures : undefined;
      });
      assert.equal(logged[attempt - 1]!.path, '/v1/files/all');
    }

    // Every other route goes on.
    assert.equal((await createUpload(server.url, service, 10, { filename: 'b.bin', user_id: 'alice' })).status, 201);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});

describe('the first request to each lazily loaded route', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('succeeds, and is counted under its route as if the handlers had been registered at start', async () => {
    const data = randomBytes(1000);
    const created = await createUpload(server.url, service, data.length, { filename: 'b.bin', user_id: 'bob' });
    await patchUpload(new URL(created.headers.get('location')!, server.url).href, service, 0, data);
    const asBob = { Authorization: `Bearer ${await server.token('bob')}` };

    const minted = await fetch(`${server.url}/v1/files/generate-token?user_id=carol`, { method: 'POST', headers: service });
    assert.equal(minted.status, 200, await minted.clone().text());
    const page = await fetch(`${server.url}/v1/files/all?limit=5`, { headers: asBob });
    assert.equal(page.status, 200);
    const [file] = ((await page.json()) as { files: Array<{ key: string }> }).files;
    const metadata = await fetch(`${server.url}/v1/files/metadata/${file!.key}`, { headers: asBob });
    assert.equal(metadata.status, 200);
    const usage = await fetch(`${server.url}/v1/usage`, { headers: asBob });
    assert.equal(((await usage.json()) as { used_bytes: number }).used_bytes, data.length);
    const link = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(file!.key)}`, { headers: asBob });
    assert.equal(link.status, 200);
    const got = await fetch(((await link.json()) as { url: string }).url);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
    const batch = await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...asBob, 'Content-Type': 'application/json' }, body: JSON.stringify({ keys: [file!.key] }) });
    assert.equal(batch.status, 200);
    const zip = await fetch(((await batch.json()) as { url: string }).url);
    assert.equal(zip.status, 200);
    await zip.arrayBuffer();
    const init = await fetch(`${server.url}/v1/files/init`, { method: 'POST', headers: { ...asBob, 'Content-Type': 'application/json' }, body: JSON.stringify({ mode: 'single', files: [{ name: 'c.txt', size: 3, mime: 'text/plain' }] }) });
    assert.equal(init.status, 200, await init.clone().text());
    const removed = await fetch(`${server.url}/v1/files/${file!.key}`, { method: 'DELETE', headers: asBob });
    assert.equal(removed.status, 200);

    const counted = await until('the last request to be counted', async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return text.includes('route="/v1/files/:key{.+}"') ? text : undefined;
    });
    for (const route of [
      'POST /v1/files/generate-token 200', 'GET /v1/files/all 200', 'GET /v1/files/metadata/:key{.+} 200', 'GET /v1/usage 200',
      'GET /v1/files/signed-url 200', 'GET /get/:encoded 200', 'POST /v1/files/batch-download 200', 'GET /v1/files/batch-download/:token 200',
      'POST /v1/files/init 200', 'DELETE /v1/files/:key{.+} 200',
    ]) {
      const [method, label, status] = route.split(' ');
      assert.ok(counted.includes(`sl_http_requests_total{method="${method}",route="${label}",status="${status}"}`), `${route} is counted under its route`);
    }
  });
});
