// A tus-js-client upload while something the server depends on goes away and comes back (the
// database, the storage): 6 MiB in 1 MiB chunks, with tus-js-client's own retry rule (what
// browsers and Uppy run). `outage(away)` takes the dependency down, awaits `away` (settled once the
// client has been refused twice) and brings it back. The upload must finish with the right SHA-256
// on the same upload URL (resumed, not started over), and leave no second reservation behind.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as tus from 'tus-js-client';
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
