// S3 storage goes away under a running server (the service restarts, the network to it fails) and
// comes back. The server reaches Swift through a relay the test takes down and brings back on the
// same port. Meanwhile what needs storage answers 503 `unavailable` with Retry-After (a HEAD of an
// upload 423 `upload_unavailable`: tus-js-client starts an upload over after any other failed
// HEAD), never 500; readiness fails while liveness holds; nothing is half-stored. Afterwards the
// upload resumes at its offset, and a tus-js-client upload that ran through the outage finishes on
// the same upload with the right SHA-256.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../helpers/problem.ts';
import { storageEnvFor } from '../helpers/s3.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.ts';
import { createUpload, headUpload, patchUpload, TUS } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { uploadThroughOutage } from '../helpers/upload-through-outage.ts';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('an S3 storage outage under a running server', { timeout: 300_000 }, () => {
  let relay: TcpRelay;
  let server: TestServer;
  before(async () => {
    const dataDir = tempDir();
    const endpoint = new URL((await storageEnvFor(dataDir, 's3')).S3_ENDPOINT!);
    relay = await startTcpRelay({ host: endpoint.hostname, port: Number(endpoint.port) });
    server = await startTestServer({ dataDir, storage: 's3', env: { S3_ENDPOINT: relay.url } });
  });
  after(async () => {
    await server?.stop();
    await relay?.close();
  });

  test('requests that need storage answer 503 unavailable (a HEAD 423); afterwards the upload resumes at its offset', async () => {
    const auth = { ...TUS, Authorization: `Bearer ${await server.token('quinn')}` };
    const data = randomBytes(3 * MiB);
    const created = await createUpload(server.url, auth, data.length, { filename: 'q.bin' });
    assert.equal(created.status, 201);
    const url = new URL(created.headers.get('location')!, server.url).toString();
    assert.equal((await patchUpload(url, auth, 0, data.subarray(0, MiB))).status, 204);

    await relay.down();
    try {
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { storage: { ok: boolean } }).storage.ok, false);
      assert.equal((await fetch(`${server.url}/healthz/live`)).status, 200, 'alive: nothing to restart');
      const probe = await headUpload(url, auth);
      await expectProblem(probe, 423, 'upload_unavailable', 'HEAD', 'HEAD');
      assert.ok(Number(probe.headers.get('retry-after')) > 0, 'HEAD: Retry-After');
      const refusals: Array<[string, Response]> = [
        ['PATCH', await patchUpload(url, auth, MiB, data.subarray(MiB, 2 * MiB))],
        ['creation', await createUpload(server.url, auth, 10, { filename: 'n.bin' })],
      ];
      for (const [what, res] of refusals) {
        await expectProblem(res, 503, 'unavailable', what, what === 'PATCH' ? 'PATCH' : 'POST');
        assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`);
      }
    } finally {
      await relay.up();
    }

    await until('ready again', async () => (await fetch(`${server.url}/healthz`)).status === 200);
    const head = await headUpload(url, auth);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), String(MiB), 'the refused PATCH stored nothing');
    const finished = await patchUpload(url, auth, MiB, data.subarray(MiB));
    assert.equal(finished.status, 200, await finished.clone().text());
    assert.equal(((await finished.json()) as { sha256: string }).sha256, sha256(data));
    const usage = (await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json()) as { used_bytes: number; reserved_bytes: number };
    assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0], 'the refused creation holds no reservation');
  });

  test('a tus-js-client upload runs through the outage on the same upload and finishes with the right SHA-256', async () => {
    await uploadThroughOutage(server.url, await server.token('rosa'), async (away) => {
      await relay.down();
      try {
        await away;
      } finally {
        await relay.up();
      }
    });
  });
});
