// PostgreSQL goes away under a running server (a restart, a failover) and comes back. Meanwhile
// every request that needs it is answered 503 `unavailable` with Retry-After (which tus clients
// retry), never 500 and never a 200 cut short, and nothing it sent is half-recorded; readiness
// fails while liveness holds, so a load balancer stops sending work without restarting the
// instance. Once PostgreSQL is back the server serves again by itself: an upload cut by the outage
// resumes at its offset, and a tus-js-client upload that ran through the outage finishes with the
// right SHA-256.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { refusedDuringOutage, resumedAfterOutage, uploadStartedBeforeOutage, uploadThroughOutage } from '../helpers/upload-through-outage.ts';
import { POSTGRES_MISSING, startPostgres, type PostgresServer } from '../support/postgres.ts';


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
    const started = await uploadStartedBeforeOutage(server.url, await server.token('olga'), 'o.bin');
    const { auth } = started;
    await postgres.outage(() => refusedDuringOutage(server.url, started, 'db', [
      ['every file', fetch(`${server.url}/v1/files/all`, { headers: auth })],
      ['a page of files', fetch(`${server.url}/v1/files/all?limit=10`, { headers: auth })],
      ['usage', fetch(`${server.url}/v1/usage`, { headers: auth })],
    ]));
    await resumedAfterOutage(server.url, started);
    const list = (await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json()) as { files: Array<{ filename: string }> };
    assert.deepEqual(list.files.map((f) => f.filename), ['o.bin'], 'the refused creation left nothing');
  });

  test('a tus-js-client upload runs through the outage on the same upload and finishes with the right SHA-256', async () => {
    await uploadThroughOutage(server.url, await server.token('pavel'), (away) => postgres.outage(() => away));
  });
});
