// Uploads while something the server depends on goes away and comes back (the database, the
// storage), as the outage suites check them: an upload started before the outage, refused with a
// retryable answer during it and resumed after it; and a tus-js-client upload (6 MiB in 1 MiB chunks, with tus-js-client's own retry rule, what
// browsers and Uppy run). `outage(away)` takes the dependency down, awaits `away` (settled once the
// client has been refused twice) and brings it back. The upload must finish with the right SHA-256
// on the same upload URL (resumed, not started over), and leave no second reservation behind.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as tus from 'tus-js-client';
import { expectProblem } from './problem.ts';
import { createUpload, headUpload, patchUpload, TUS } from './tus.ts';
import { until } from './until.ts';

const MiB = 1024 * 1024;

export async function uploadThroughOutage(serverUrl: string, token: string, outage: (away: Promise<void>) => Promise<void>): Promise<void> {
  const auth = { Authorization: `Bearer ${token}` };
  const data = randomBytes(6 * MiB);
  let chunks = 0;
  const failures: number[] = [];
  let upload!: tus.Upload;
  const done = new Promise<string>((resolve, reject) => {
    upload = new tus.Upload(data, {
      endpoint: `${serverUrl}/v1/uploads`,
      headers: auth,
      metadata: { filename: 'through-outage.bin' },
      chunkSize: MiB,
      retryDelays: Array.from({ length: 60 }, () => 250),
      storeFingerprintForResuming: false,
      onChunkComplete: () => void chunks++,
      // Counts the failures and answers as tus-js-client's default rule does: retry unless a 4xx
      // other than 409 and 423.
      onShouldRetry: (error) => {
        const status = (error as tus.DetailedError).originalResponse?.getStatus() ?? 0;
        failures.push(status);
        return !(status >= 400 && status < 500) || status === 409 || status === 423;
      },
      onError: reject,
      onSuccess: (payload) => resolve(payload.lastResponse.getBody()),
    });
  });
  upload.start();
  await until('two chunks stored', () => chunks >= 2);
  const uploadUrl = upload.url;
  await outage(until('the client was refused twice', () => failures.length >= 2).then(() => {}));
  const record = JSON.parse(await done) as { sha256: string; size: number };
  assert.equal(record.size, data.length);
  assert.equal(record.sha256, createHash('sha256').update(data).digest('hex'));
  assert.equal(upload.url, uploadUrl, `resumed, not started over (answers during the outage: ${failures.join(', ')})`);
  const usage = (await (await fetch(`${serverUrl}/v1/usage`, { headers: auth })).json()) as { used_bytes: number; reserved_bytes: number };
  assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [data.length, 0], 'no second upload holds a reservation');
}

export interface StartedUpload {
  auth: Record<string, string>;
  /** 3 MiB, of which the first 1 MiB is stored. */
  data: Buffer;
  url: string;
}

/** An upload with its first 1 MiB stored, before the outage. */
export async function uploadStartedBeforeOutage(serverUrl: string, token: string, filename: string): Promise<StartedUpload> {
  const auth = { ...TUS, Authorization: `Bearer ${token}` };
  const data = randomBytes(3 * MiB);
  const created = await createUpload(serverUrl, auth, data.length, { filename });
  assert.equal(created.status, 201);
  const url = new URL(created.headers.get('location')!, serverUrl).toString();
  assert.equal((await patchUpload(url, auth, 0, data.subarray(0, MiB))).status, 204);
  return { auth, data, url };
}

/**
 * During the outage: readiness fails on `check` while liveness holds; the upload's HEAD answers 423
 * upload_unavailable (tus-js-client takes any other failed HEAD for a lost upload and starts it
 * over); its next PATCH, a creation and the `others` answer 503 unavailable; all with Retry-After.
 */
export async function refusedDuringOutage(serverUrl: string, started: StartedUpload, check: 'db' | 'storage', others: Array<[string, Promise<Response>]> = []): Promise<void> {
  const { auth, data, url } = started;
  const health = await fetch(`${serverUrl}/healthz`);
  assert.equal(health.status, 503);
  assert.equal(((await health.json()) as Record<string, { ok: boolean }>)[check]!.ok, false);
  assert.equal((await fetch(`${serverUrl}/healthz/live`)).status, 200, 'alive: nothing to restart');
  const probe = await headUpload(url, auth);
  await expectProblem(probe, 423, 'upload_unavailable', 'HEAD', 'HEAD');
  assert.ok(Number(probe.headers.get('retry-after')) > 0, 'HEAD: Retry-After');
  assert.equal(probe.headers.get('tus-resumable'), '1.0.0');
  const refusals: Array<[string, Response, string]> = [
    ['PATCH', await patchUpload(url, auth, MiB, data.subarray(MiB, 2 * MiB)), 'PATCH'],
    ['creation', await createUpload(serverUrl, auth, 10, { filename: 'n.bin' }), 'POST'],
  ];
  for (const [what, answer] of others) refusals.push([what, await answer, 'GET']);
  for (const [what, res, method] of refusals) {
    await expectProblem(res, 503, 'unavailable', what, method);
    assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`);
  }
}

/** After the outage: ready again, the upload resumes at the 1 MiB it had and finishes with the right SHA-256. */
export async function resumedAfterOutage(serverUrl: string, started: StartedUpload): Promise<void> {
  const { auth, data, url } = started;
  await until('ready again', async () => (await fetch(`${serverUrl}/healthz`)).status === 200);
  const head = await headUpload(url, auth);
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('upload-offset'), String(MiB), 'the refused PATCH stored nothing');
  const finished = await patchUpload(url, auth, MiB, data.subarray(MiB));
  assert.equal(finished.status, 200, await finished.clone().text());
  assert.equal(((await finished.json()) as { sha256: string }).sha256, createHash('sha256').update(data).digest('hex'));
}
