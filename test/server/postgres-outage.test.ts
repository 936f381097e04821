// PostgreSQL goes away under a running server (a restart, a failover) and comes back. Meanwhile
// every request that needs it is answered 503 `unavailable` with Retry-After (which tus clients
// retry), never 500 and never a 200 cut short, and nothing it sent is half-recorded; readiness
// fails while liveness holds, so a load balancer stops sending work without restarting the
// instance. Once PostgreSQL is back the server serves again by itself: an upload cut by the outage
// resumes at its offset, and a tus-js-client upload that ran through the outage finishes with the
// right SHA-256.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../helpers/problem.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { uploadThroughOutage } from '../helpers/upload-through-outage.ts';
import { POSTGRES_MISSING, startPostgres, type PostgresServer } from '../support/postgres.ts';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('a PostgreSQL outage under a running server', { skip: POSTGRES_MISSING, timeout: 300_000 }, () => {
  let postgres: PostgresServer;
  let server: TestServer;
  before(async () => {
    postgres = await startPostgres();
    server = await startTestServer({ dataDir: tempDir(), storage: 's3', env: { DATABASE_URL: postgres.url } });
  });
  after(async () => {
    await server?.stop();
    await postgres?.stop();
  });

  test('requests that need the database answer 503 unavailable; afterwards the upload resumes at its offset', async () => {
    const auth = { ...TUS, Authorization: `Bearer ${await server.token('olga')}` };
    const data = randomBytes(3 * MiB);
    const created = await createUpload(server.url, auth, data.length, { filename: 'o.bin' });
    assert.equal(created.status, 201);
    const url = new URL(created.headers.get('location')!, server.url).toString();
    assert.equal((await patchUpload(url, auth, 0, data.subarray(0, MiB))).status, 204);

    await postgres.outage(async () => {
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { db: { ok: boolean } }).db.ok, false);
      assert.equal((await fetch(`${server.url}/healthz/live`)).status, 200, 'alive: nothing to restart');

      // tus-js-client takes any failed HEAD but 423 for a lost upload and starts it over.
      const probe = await headUpload(url, auth);
      await expectProblem(probe, 423, 'upload_unavailable', 'HEAD', 'HEAD');
      assert.ok(Number(probe.headers.get('retry-after')) > 0, 'HEAD: Retry-After');
      assert.equal(probe.headers.get('tus-resumable'), '1.0.0');

      const refusals: Array<[string, Response, string]> = [
        ['PATCH', await patchUpload(url, auth, MiB, data.subarray(MiB, 2 * MiB)), 'PATCH'],
        ['creation', await createUpload(server.url, auth, 10, { filename: 'n.bin' }), 'POST'],
        ['every file', await fetch(`${server.url}/v1/files/all`, { headers: auth }), 'GET'],
        ['a page of files', await fetch(`${server.url}/v1/files/all?limit=10`, { headers: auth }), 'GET'],
        ['usage', await fetch(`${server.url}/v1/usage`, { headers: auth }), 'GET'],
      ];
      for (const [what, res, method] of refusals) {
        await expectProblem(res, 503, 'unavailable', what, method);
        assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`);
      }
    });

    await until('ready again', async () => (await fetch(`${server.url}/healthz`)).status === 200);
    const head = await headUpload(url, auth);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), String(MiB), 'the refused PATCH stored nothing');
    const finished = await patchUpload(url, auth, MiB, data.subarray(MiB));
    assert.equal(finished.status, 200, await finished.clone().text());
    assert.equal(((await finished.json()) as { sha256: string }).sha256, sha256(data));
    const list = (await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json()) as { files: Array<{ filename: string }> };
    assert.deepEqual(list.files.map((f) => f.filename), ['o.bin'], 'the refused creation left nothing');
  });

  test('a tus-js-client upload runs through the outage on the same upload and finishes with the right SHA-256', async () => {
    await uploadThroughOutage(server.url, await server.token('pavel'), (away) => postgres.outage(() => away));
  });
});
