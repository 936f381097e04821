// S3 storage goes away under a running server (the service restarts, the network to it fails) and
// comes back. The server reaches Swift through a relay the test takes down and brings back on the
// same port. Meanwhile what needs storage answers 503 `unavailable` with Retry-After (a HEAD of an
// upload 423 `upload_unavailable`: tus-js-client starts an upload over after any other failed
// HEAD), never 500; readiness fails while liveness holds; nothing is half-stored. Afterwards the
// upload resumes at its offset, and a tus-js-client upload that ran through the outage finishes on
// the same upload with the right SHA-256.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { storageEnvFor } from '../helpers/s3.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { startS3Throttle, type S3Throttle } from '../helpers/s3-throttle.ts';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.ts';
import { refusedDuringOutage, resumedAfterOutage, uploadStartedBeforeOutage, uploadThroughOutage } from '../helpers/upload-through-outage.ts';


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
    const started = await uploadStartedBeforeOutage(server.url, await server.token('quinn'), 'q.bin');
    const { auth, data } = started;
    await relay.down();
    try {
      await refusedDuringOutage(server.url, started, 'storage');
    } finally {
      await relay.up();
    }
    await resumedAfterOutage(server.url, started);
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

describe('S3 storage answering 503 SlowDown (throttled or overloaded) under a running server', { timeout: 300_000 }, () => {
  let throttle: S3Throttle;
  let server: TestServer;
  before(async () => {
    const dataDir = tempDir();
    throttle = await startS3Throttle(new URL((await storageEnvFor(dataDir, 's3')).S3_ENDPOINT!));
    server = await startTestServer({ dataDir, storage: 's3', env: { S3_ENDPOINT: throttle.url } });
  });
  after(async () => {
    await server?.stop();
    await throttle?.close();
  });

  test('what needs storage answers 503 unavailable with Retry-After (a HEAD 423), not 500; afterwards the upload resumes at its offset', async () => {
    const started = await uploadStartedBeforeOutage(server.url, await server.token('rita'), 'r.bin');
    throttle.throttled = true;
    try {
      await refusedDuringOutage(server.url, started, 'storage');
    } finally {
      throttle.throttled = false;
    }
    await resumedAfterOutage(server.url, started);
  });
});
