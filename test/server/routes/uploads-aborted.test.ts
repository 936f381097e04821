// PATCHes cut early, the three ways networks and clients cut them: closed after part of the body,
// reset (RST), and half-closed (the client's FIN, its side still open). After 200 of each the
// server process holds no more descriptors than before (counted in /proc/<pid>/fd of a server in
// its own process, polled until it comes back), and every cut upload resumes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SERVICE_TOKEN, spawnServer, tempDir, type SpawnedServer } from '../../helpers/server.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { createUpload, headUpload, patchUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';

const ABORTS = 200;
const LENGTH = 512 * 1024;
type Cut = 'close' | 'reset' | 'half-close';

/** Headers and `sent` bytes of a PATCH for the whole upload, then the connection is cut. */
async function cutPatch(uploadUrl: string, token: string, sent: number, cut: Cut): Promise<void> {
  const { hostname, port, pathname } = new URL(uploadUrl);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.resume();
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const head = [
    `PATCH ${pathname} HTTP/1.1`, `Host: ${hostname}:${port}`, `Authorization: Bearer ${token}`, 'Tus-Resumable: 1.0.0',
    'Upload-Offset: 0', 'Content-Type: application/offset+octet-stream', `Content-Length: ${LENGTH}`, '', '',
  ].join('\r\n');
  await new Promise<void>((resolve) => socket.write(head, () => resolve()));
  await new Promise<void>((resolve) => socket.write(randomBytes(sent), () => resolve()));
  if (cut === 'reset') return void socket.resetAndDestroy();
  if (cut === 'close') return void socket.destroy();
  // Half-close: our FIN, then we wait for the server to close its side (it must: the body
  // can never be completed).
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.end();
  await closed;
}

for (const backend of backendsUnderTest()) {
  describe(`aborted PATCHes release what they held (${backend})`, () => {
    let server: SpawnedServer;
    let token: string;
    const descriptors = () => readdirSync(`/proc/${server.pid}/fd`).length;
    before(async () => {
      server = await spawnServer(tempDir(), {}, backend);
      const minted = await fetch(`${server.url}/v1/files/generate-token?user_id=cutter&expires_hours=1`, {
        method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN },
      });
      token = (await minted.json()).token;
    });
    after(async () => {
      await server.kill();
    });

    for (const cut of ['close', 'reset', 'half-close'] as Cut[]) {
      test(`${ABORTS} PATCHes cut by ${cut} after ≤ 256 KiB: descriptors return to the baseline, every upload resumes`, async () => {
        const auth = { Authorization: `Bearer ${token}` };
        const urls: string[] = [];
        for (let i = 0; i < ABORTS; i += 20) {
          const batch = await Promise.all(Array.from({ length: 20 }, () => createUpload(server.url, auth, LENGTH)));
          urls.push(...batch.map((r) => r.headers.get('location')!));
        }
        // One cut before counting: whatever the first one loads or opens for good is in the baseline.
        await cutPatch(urls[0]!, token, 1000, cut);
        await until("the warm-up request to end", async () => (await headUpload(urls[0]!, auth)).status === 200);
        const baseline = descriptors();

        for (let i = 1; i < ABORTS; i += 10) {
          await Promise.all(urls.slice(i, i + 10).map((url, j) => cutPatch(url, token, 1 + (((i + j) * 7919) % (256 * 1024)), cut)));
        }
        // Sockets and files close asynchronously: poll. A leak never comes back (~1 per cut, 199
        // cuts). On S3 the client keeps idle sockets alive for the next request, up to its pool's
        // 50 per host (the AWS SDK's default): ten cuts at a time can leave more than a few open.
        const slack = backend === 's3' ? 50 : 8;
        await until(`descriptors back to ${baseline} (+${slack}); now ${descriptors()}`, () => descriptors() <= baseline + slack, 30_000);

        // A cut request counts as in flight until what it received is stored (on S3 the tail's
        // upload): the user's limit of upload requests in flight is free again once they all are.
        await until('every cut request has stored what it received', async () => /^sl_uploads_receiving 0$/m.test(await (await fetch(`${server.url}/metrics`)).text()), 60_000);
        // The cut uploads resume from what was stored: no lock or half-written state is left.
        for (const url of urls.slice(-3)) {
          const head = await headUpload(url, auth);
          assert.equal(head.status, 200);
          const offset = Number(head.headers.get('upload-offset'));
          const rest = await patchUpload(url, auth, offset, randomBytes(LENGTH - offset));
          assert.equal(rest.status, 200, await rest.clone().text());
        }
        assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
      });
    }
  });
}
