// Batch ZIPs over real HTTP, checked by two independent readers: Debian's `unzip -t` and yauzl.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Transform, pipeline, type Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { startTestServer, tempDir, type TestServer } from '../../helpers/server.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { tusUpload } from '../../helpers/tus.ts';
import { until } from '../../helpers/until.ts';
import { readWithYauzl, unzipTest } from '../../helpers/zip.ts';

/** Descriptors of this process open on files under `dir`. */
function descriptorsUnder(dir: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
    } catch {
      return false; // closed while listed
    }
  }).length;
}

async function readZip(buffer: Buffer): Promise<Map<string, Buffer>> {
  const file = path.join(tempDir('sl-zip-'), 'batch.zip');
  writeFileSync(file, buffer);
  const { ok, output } = unzipTest(file);
  assert.ok(ok, output);
  return new Map((await readWithYauzl(file)).map((e) => [e.name, e.data]));
}

for (const backend of backendsUnderTest()) {
  describe(`batch download (${backend})`, () => {
    let server: TestServer;
    let clock = Date.now();
    let auth: Record<string, string>;
    const files: Array<{ key: string; data: Buffer; folder: string; filename: string }> = [];

    before(async () => {
      server = await startTestServer({ storage: backend, now: () => clock });
      auth = { Authorization: `Bearer ${await server.token('olga', 30 * 86400)}` };
      const specs = [
        ['docs', 'report.txt'], ['docs', 'report.txt'], ['docs', 'report.txt'], ['', 'photo.jpg'], ['pics/2026', 'photo.jpg'], ['../evil', 'x.txt'.replace('../', '')],
      ];
      for (const [folder, filename] of specs.slice(0, 5)) {
        const data = randomBytes(10_000 + files.length * 1000);
        const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: filename!, folder: folder! } }).done;
        files.push({ key: fileKey!, data, folder: folder!, filename: filename! });
      }
    });
    after(() => server.stop());

    const mint = (body: unknown, headers = auth) =>
      fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

    test('a ZIP of named entries, duplicates renamed, exact Content-Length, valid for unzip and yauzl', async () => {
      const minted = await mint({ keys: files.map((f) => f.key), name: 'my files' });
      assert.equal(minted.status, 200);
      const { url, token, expires_at } = await minted.json();
      assert.ok(token && url.endsWith(token));
      assert.ok(Date.parse(expires_at) > clock);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/zip');
      assert.match(res.headers.get('content-disposition')!, /filename\*=UTF-8''my%20files\.zip/);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get('content-length'), String(body.length));
      const entries = await readZip(body);
      assert.deepEqual([...entries.keys()].sort(), ['docs/report (1).txt', 'docs/report (2).txt', 'docs/report.txt', 'photo.jpg', 'pics/2026/photo.jpg']);
      assert.ok(entries.get('docs/report.txt')!.equals(files[0]!.data));
      assert.ok(entries.get('docs/report (1).txt')!.equals(files[1]!.data));
      assert.ok(entries.get('docs/report (2).txt')!.equals(files[2]!.data));
      assert.ok(entries.get('photo.jpg')!.equals(files[3]!.data));
      assert.ok(entries.get('pics/2026/photo.jpg')!.equals(files[4]!.data));
      const head = await fetch(url, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(body.length));
    });

    test('a file deleted after the link was made is left out with a MISSING.txt note', async () => {
      const extra = randomBytes(5000);
      const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data: extra, metadata: { filename: 'soon-gone.bin' } }).done;
      const { url } = await (await mint({ keys: [files[0]!.key, fileKey] })).json();
      assert.equal((await fetch(`${server.url}/v1/files/${fileKey}`, { method: 'DELETE', headers: auth })).status, 200);
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get('content-length'), String(body.length));
      const entries = await readZip(body);
      assert.deepEqual([...entries.keys()].sort(), ['MISSING.txt', 'docs/report.txt']);
      assert.match(entries.get('MISSING.txt')!.toString(), /1 of the 2 files/);
    });

    test('foreign or unknown keys answer 404 naming no key; bad requests 400', async () => {
      const other = { Authorization: `Bearer ${await server.token('pete', 30 * 86400)}` };
      const foreign = await mint({ keys: [files[0]!.key] }, other);
      assert.equal(foreign.status, 404);
      assert.ok(!(await foreign.text()).includes(files[0]!.key));
      assert.equal((await mint({ keys: [files[0]!.key, 'users/olga/2026/01/01/' + 'f'.repeat(32)] })).status, 404);
      for (const bad of [{}, { keys: [] }, { keys: 'x' }, { keys: [1] }, { keys: Array.from({ length: 201 }, (_, i) => `k${i}`) }, { keys: [files[0]!.key], name: '' }]) {
        const res = await mint(bad);
        assert.equal(res.status, 400, JSON.stringify(bad).slice(0, 80));
        assert.equal((await res.json()).code, 'invalid_parameter');
      }
      const notJson = await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{' });
      assert.equal(notJson.status, 400);
      assert.equal((await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', body: '{}' })).status, 401);
      // The service token may bundle any one user's files.
      const service = await mint({ keys: [files[3]!.key] }, { 'X-Service-Token': server.serviceToken } as never);
      assert.equal(service.status, 200);
    });

    test('tampered tokens answer 403, expired ones 410', async () => {
      const { url, token } = await (await mint({ keys: [files[0]!.key] })).json();
      const [body, sig] = token.split('.');
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
      for (const tampered of [`${flip(body)}.${sig}`, `${body}.${flip(sig)}`, `${body}`, 'garbage', `${body}.${sig}.x`]) {
        const res = await fetch(`${server.url}/v1/files/batch-download/${tampered}`);
        assert.equal(res.status, 403, tampered.slice(0, 20));
        assert.equal((await res.json()).code, 'invalid_signature');
      }
      clock += 3601_000;
      const expired = await fetch(url);
      assert.equal(expired.status, 410);
      assert.equal((await expired.json()).code, 'link_expired');
      clock -= 3601_000;
    });

    /** Every stream the server opens on storage while `work` runs, counted as the server pulls bytes from it. */
    async function watchingReads<T>(work: (opened: Readable[], pulled: () => number) => Promise<T>): Promise<T> {
      const storage = server.services.storage;
      const openFile = storage.openFile;
      const opened: Readable[] = [];
      let pulled = 0;
      storage.openFile = async (key, range) => {
        const body = await openFile.call(storage, key, range);
        opened.push(body);
        if (backend === 'file') return body; // read from its descriptor (zip/file-chunks.ts), not as a stream
        const counted = new Transform({ transform: (chunk: Buffer, _e, cb) => ((pulled += chunk.length), cb(null, chunk)) });
        return pipeline(body, counted, () => {});
      };
      try {
        return await work(opened, () => pulled);
      } finally {
        storage.openFile = openFile;
      }
    }

    async function bigFiles(count: number, size: number): Promise<string[]> {
      const keys: string[] = [];
      for (let i = 0; i < count; i++) keys.push((await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(size), metadata: { filename: `big-${i}.bin` } }).done).fileKey!);
      return keys;
    }

    test('a client that leaves mid-archive: the file being read is released at once, the server keeps serving', async () => {
      const keys = await bigFiles(2, 12 * 1024 * 1024);
      const { url } = await (await mint({ keys })).json();
      await watchingReads(async (opened) => {
        for (let i = 0; i < 3; i++) {
          await new Promise<void>((resolve, reject) => {
            const req = http.get(url, { agent: false }, (res) => {
              let received = 0;
              res.on('data', (chunk: Buffer) => {
                if ((received += chunk.length) < 2 * 1024 * 1024) return;
                req.destroy();
                resolve();
              });
            });
            req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(e)));
          });
        }
        await until('every opened file released', () => opened.length >= 3 && opened.every((s) => s.destroyed));
        if (backend === 'file') await until('no descriptor left on stored files', () => descriptorsUnder(path.join(server.dataDir, 'users')) === 0);
      });
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get('content-length'), String(body.length));
      assert.equal((await readZip(body)).size, 2);
    });

    if (backend === 's3') {
      test('a ZIP of S3 objects to a client that stops reading holds a bounded amount, then completes', async () => {
        const size = 16 * 1024 * 1024;
        const keys = await bigFiles(3, size);
        const { url } = await (await mint({ keys })).json();
        // What the server pulled from S3 and the client has not read: in the server's buffers or the
        // loopback socket's. An archive held in memory would make it the whole 48 MiB.
        const BOUND = 20 * 1024 * 1024;
        await watchingReads(async (opened, pulled) => {
          const body = await new Promise<Buffer>((resolve, reject) => {
            http.get(url, { agent: false }, (res) => {
              const chunks: Buffer[] = [];
              let received = 0;
              let checked = false;
              res.on('data', (chunk: Buffer) => {
                chunks.push(chunk);
                received += chunk.length;
                if (checked || received < 1024 * 1024) return;
                checked = true;
                res.pause();
                // The client reads nothing more: S3 reads go on only until every buffer on the way is
                // full, then stop; an archive gathered in memory would stop only after all 48 MiB.
                let last = -1;
                let unchanged = 0;
                until('S3 reads to stop while the client does not read', () => {
                  unchanged = pulled() === last ? unchanged + 1 : 0;
                  last = pulled();
                  return unchanged >= 5;
                })
                  .then(() => {
                    assert.ok(pulled() - received <= BOUND, `${pulled() - received} bytes pulled ahead of the client`);
                    res.resume();
                  })
                  .catch(reject);
              });
              res.on('end', () => resolve(Buffer.concat(chunks)));
              res.on('error', reject);
            }).on('error', reject);
          });
          assert.ok(pulled() >= 3 * size);
          assert.equal((await readZip(body)).size, 3);
        });
      });
    }

    if (backend === 'file') {
      test('local files go into the archive through reused buffers, not a new 1 MiB buffer per chunk', async () => {
        const keys = await bigFiles(2, 16 * 1024 * 1024);
        const { url } = await (await mint({ keys })).json();
        const allocUnsafeSlow = Buffer.allocUnsafeSlow;
        let large = 0;
        Buffer.allocUnsafeSlow = (size: number) => ((large += size >= 512 * 1024 ? 1 : 0), allocUnsafeSlow(size));
        let bytes = 0;
        try {
          for (let i = 0; i < 2; i++) {
            await new Promise<void>((resolve, reject) => {
              http.get(url, { agent: false }, (res) => {
                res.on('data', (chunk: Buffer) => void (bytes += chunk.length));
                res.on('end', resolve);
                res.on('error', reject);
              }).on('error', reject);
            });
          }
        } finally {
          Buffer.allocUnsafeSlow = allocUnsafeSlow;
        }
        assert.ok(bytes > 64 * 1024 * 1024);
        // 64 chunks of 1 MiB went out; fs.createReadStream would have allocated one buffer for each.
        assert.ok(large <= 16, `${large} buffers of 512 KiB or more allocated for 64 MiB of files`);
      });
    }
  });
}
