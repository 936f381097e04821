// A client that disconnects mid-PATCH: the upload resumes from exactly the bytes that reached
// storage, no descriptor or lock is left behind, and the server keeps serving.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { locksHeld } from '../../helpers/locks-held.ts';
import { createUpload, headUpload, patchUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';

const openDescriptors = () => readdirSync('/proc/self/fd').length;

/** Bytes the kernel holds for the server's end of the connection from `clientPort`, not yet read by the server (/proc/net/tcp). */
function unreadByServer(serverPort: number, clientPort: number): number | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, , queues] = line.trim().split(/\s+/);
    if (local?.endsWith(`:${hex(serverPort)}`) && remote?.endsWith(`:${hex(clientPort)}`)) return parseInt(queues!.split(':')[1]!, 16);
  }
  return undefined;
}

/**
 * Sends PATCH headers and `sent` bytes of a longer body over a raw socket, then resets the
 * connection once the server has read them and works on the request (it holds the upload's
 * lock). Reset earlier, the request could reach the server's upload handling only after the
 * client's next request, and its bytes be stored after that one was answered (no server can
 * order requests it has not read); and bytes the server had not read yet die with the reset.
 */
async function patchAndVanish(server: TestServer, url: string, auth: Record<string, string>, offset: number, total: number, sent: Buffer): Promise<void> {
  const { hostname, port, pathname } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const head = [
    `PATCH ${pathname} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    ...Object.entries(auth).map(([k, v]) => `${k}: ${v}`),
    'Tus-Resumable: 1.0.0',
    `Upload-Offset: ${offset}`,
    'Content-Type: application/offset+octet-stream',
    `Content-Length: ${total}`,
    '',
    '',
  ].join('\r\n');
  await new Promise<void>((resolve) => socket.write(head, () => resolve()));
  await new Promise<void>((resolve) => socket.write(sent, () => resolve()));
  await until('the server holds the PATCH\'s lock', async () => (await locksHeld(server)) === 1);
  await until('the server has read what was sent', () => unreadByServer(Number(port), socket.localPort!) === 0);
  socket.resetAndDestroy();
}

describe('client disconnects mid-PATCH', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer();
    auth = { Authorization: `Bearer ${await server.token('jack')}` };
  });
  after(() => server.stop());

  test('20 disconnects in a row: each resumes from the stored bytes; no descriptor, lock or 423 left', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const url = (await createUpload(server.url, auth, data.length, { filename: 'flaky.bin' })).headers.get('location')!;
    const id = url.split('/').pop()!;
    await headUpload(url, auth); // warm up keep-alive sockets etc. before counting descriptors
    const baseline = openDescriptors();
    let offset = 0;
    for (let i = 0; i < 20; i++) {
      await patchAndVanish(server, url, auth, offset, data.length - offset, data.subarray(offset, offset + 50_000));
      // The next request must get through at once: the abandoned request released the lock.
      const head = await headUpload(url, auth);
      assert.equal(head.status, 200);
      const stored = Number(head.headers.get('upload-offset'));
      assert.ok(stored >= offset && stored <= offset + 50_000, `round ${i}: offset ${stored}`);
      assert.ok((await server.uploadBytes(id))?.equals(data.subarray(0, stored)), `round ${i}: the stored bytes are the ones sent`);
      // A lock left behind is never released; one being released (PostgreSQL: a DELETE) soon is.
      await until(`round ${i}: no lock held`, async () => (await locksHeld(server)) === 0);
      offset = stored;
    }
    // On disk the bytes go to the file as they are read, so the rounds move the upload on. S3 takes
    // them in only once it has read the upload's state from the bucket: bytes the server read before
    // that die with the reset (node discards what a reset request had buffered), and the client
    // sends them again, as here.
    if (server.storage === 'file') assert.ok(offset > 0, 'the rounds stored some of the bytes sent');
    const res = await patchUpload(url, auth, offset, data.subarray(offset));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).size, data.length);
    // Closed sockets are reaped asynchronously: wait for the count to come back (a leak never does).
    await until(`descriptors back to ${baseline} + 2 (now ${openDescriptors()})`, () => openDescriptors() <= baseline + 2, 30_000);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});
