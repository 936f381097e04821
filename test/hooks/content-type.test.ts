// Content checks over real HTTP: the type detected from real file headers (PNG, JPEG, PDF, ZIP)
// is recorded beside the declared one with its category; a disguised executable named .jpg is
// recorded as what it is; active content never goes out inline from a signed link.
import assert from 'node:assert/strict';
import http from 'node:http';
import { crc32 } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import yazl from 'yazl';
import { expectProblem } from '../helpers/problem.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { createUpload, patchUpload, headUpload, tusUpload, TUS } from '../helpers/tus.ts';

function pngBytes(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]); // 1×1, 8-bit greyscale
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IEND', Buffer.alloc(0))]);
}

const jpegBytes = () => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0\x01\x01\0\0\x01\0\x01\0\0', 'latin1'), Buffer.alloc(64), Buffer.from([0xff, 0xd9])]);
const pdfBytes = () => Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n', 'latin1');
// A PE executable starts with the DOS header's 'MZ'; the rest does not matter to a sniffer.
const exeBytes = () => Buffer.concat([Buffer.from('MZ', 'latin1'), Buffer.alloc(510)]);

function zipBytes(): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from('hello'), 'hello.txt');
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
  });
}


/** A disguised file: an executable's header, then `size` bytes in all. */
const disguisedExe = (size: number) => Buffer.concat([exeBytes(), Buffer.alloc(Math.max(0, size - 512), 7)]);

for (const backend of backendsUnderTest()) {
  describe(`content checks: detection and serving (${backend})`, () => {
    let server: TestServer;
    let auth: Record<string, string>;
    before(async () => {
      server = await startTestServer({ storage: backend });
      auth = { Authorization: `Bearer ${await server.token('tess')}` };
    });
    after(() => server.stop());

    async function upload(data: Buffer, filename: string, filetype: string) {
      const key = (await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename, filetype } }).done).fileKey!;
      const res = await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: auth });
      assert.equal(res.status, 200);
      return { key, record: await res.json() };
    }

    async function signedGet(key: string, disposition: 'inline' | 'attachment') {
      const res = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}&disposition=${disposition}`, { headers: auth });
      assert.equal(res.status, 200);
      return fetch((await res.json()).url);
    }

    test('real file headers are detected and categorised beside the declared type', async () => {
      const cases: [Buffer, string, string, string | null, string][] = [
        [pngBytes(), 'dot.png', 'image/png', 'image/png', 'image'],
        [jpegBytes(), 'photo.jpg', 'image/jpeg', 'image/jpeg', 'image'],
        [pdfBytes(), 'paper.pdf', 'application/octet-stream', 'application/pdf', 'document'],
        [await zipBytes(), 'bundle.zip', 'application/zip', 'application/zip', 'archive'],
        // No signature: a textual declared type is believed for the category, a binary one is not.
        [Buffer.from('just some words\n'), 'notes.txt', 'text/plain', null, 'document'],
        [Buffer.from('not a picture at all\n'), 'fake.png', 'image/png', null, 'other'],
        [Buffer.alloc(0), 'empty.bin', 'application/octet-stream', null, 'other'],
      ];
      for (const [data, filename, declared, detected, category] of cases) {
        const { record } = await upload(data, filename, declared);
        assert.equal(record.content_type, declared, filename);
        assert.equal(record.detected_type, detected, filename);
        assert.equal(record.category, category, filename);
      }
    });

    test('an executable named .jpg is recorded and served as what it is, and listings show it', async () => {
      const { key, record } = await upload(exeBytes(), 'holiday.jpg', 'image/jpeg');
      assert.equal(record.content_type, 'image/jpeg');
      assert.equal(record.detected_type, 'application/x-msdownload');
      assert.equal(record.category, 'other');
      const list = await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json();
      assert.equal(list.files.find((f: { key: string }) => f.key === key).detected_type, 'application/x-msdownload');
      const res = await signedGet(key, 'inline');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/x-msdownload');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(exeBytes()));
    });

    test('signed GET: an image asked inline is inline, with its type and nosniff', async () => {
      const { key } = await upload(pngBytes(), 'dot.png', 'image/png');
      const res = await signedGet(key, 'inline');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.match(res.headers.get('content-disposition')!, /^inline;/);
      await res.arrayBuffer();
    });

    test('signed GET: HTML, SVG, XML and script go out as attachments even when inline was asked', async () => {
      for (const [data, filename, type] of [
        [Buffer.from('<!doctype html><script>alert(1)</script>'), 'page.html', 'text/html'],
        [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), 'logo.svg', 'image/svg+xml'],
        [Buffer.from('alert(1)'), 'app.js', 'text/javascript; charset=utf-8'],
        // Declared harmless, but named .html: saved and opened, it would run.
        [Buffer.from('<!doctype html><script>alert(1)</script>'), 'notes.html', 'text/plain'],
        // Declared harmless, but its bytes are XML (which may carry XHTML script).
        [Buffer.from('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>'), 'notes.txt', 'text/plain'],
      ] as const) {
        const { key } = await upload(data, filename, type);
        const res = await signedGet(key, 'inline');
        assert.equal(res.status, 200, filename);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.match(res.headers.get('content-disposition')!, /^attachment;/, `${filename} as ${type}`);
        await res.arrayBuffer();
      }
    });
  });

  describe(`content checks: ALLOWED_TYPES and DENIED_TYPES (${backend})`, () => {
    let server: TestServer;
    let auth: Record<string, string>;
    const env = { DENIED_TYPES: 'application/x-msdownload, .exe, text/html', QUOTA_DEFAULT_BYTES: String(256 * 1024 * 1024) };
    before(async () => {
      server = await startTestServer({ storage: backend, env });
      auth = { Authorization: `Bearer ${await server.token('dora')}` };
    });
    after(() => server.stop());

    /** Nothing of a refused upload may stay: no row, no bytes, no reservation, no file. */
    async function assertNothingLeft(uploadUrl: string | null) {
      if (uploadUrl) {
        await expectProblem(await headUpload(uploadUrl, auth), 404, 'not_found', 'HEAD after refusal', 'HEAD');
        assert.equal(await server.hasUpload(uploadUrl.split('/').pop()!), false, 'bytes left in storage');
      }
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal(usage.reserved_bytes, 0);
      assert.equal(usage.used_bytes, 0);
      assert.deepEqual((await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json()).files, []);
    }

    test('a denied extension or declared type is refused at creation, before any byte is stored', async () => {
      for (const meta of [{ filename: 'setup.exe', filetype: 'application/octet-stream' }, { filename: 'page.htm', filetype: 'text/html; charset=utf-8' }]) {
        const res = await createUpload(server.url, auth, 1000, meta);
        const problem = await expectProblem(res, 415, 'type_not_allowed', meta.filename, 'POST');
        assert.match(problem!.detail!, /does not accept/);
      }
      await assertNothingLeft(null);
    });

    test('a disguised executable is refused by its first bytes, long before the rest is sent', async () => {
      const length = 64 * 1024 * 1024;
      const created = await createUpload(server.url, auth, length, { filename: 'holiday.jpg', filetype: 'image/jpeg' });
      assert.equal(created.status, 201);
      const url = created.headers.get('location')!;
      // Send only the first 16 KiB of the 64 MiB and keep the request open: the answer must come
      // while the client still has almost everything left to send.
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(url, {
          method: 'PATCH',
          headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(length) },
        });
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.write(disguisedExe(16 * 1024));
      });
      assert.equal(answer.status, 415, answer.body);
      assert.equal(JSON.parse(answer.body).code, 'type_not_allowed');
      await assertNothingLeft(url);
    });

    test('a head that arrives over several small PATCHes is checked once it is whole', async () => {
      const { done } = tusUpload({ endpoint: server.url, headers: auth, data: disguisedExe(20_000), chunkSize: 1000, metadata: { filename: 'report.pdf', filetype: 'application/pdf' } });
      const error = await done.then(() => null, (e: { originalResponse?: { getStatus(): number; getBody(): string } }) => e);
      assert.ok(error, 'the upload must be refused');
      assert.equal(error.originalResponse?.getStatus(), 415);
      assert.equal(JSON.parse(error.originalResponse!.getBody()).code, 'type_not_allowed');
      await assertNothingLeft(null);
    });

    test('a small file of deferred length is checked at its finish', async () => {
      const created = await createUpload(server.url, auth, 'defer', { filename: 'tiny.bin', filetype: 'application/octet-stream' });
      assert.equal(created.status, 201);
      const url = created.headers.get('location')!;
      const data = exeBytes();
      const first = await patchUpload(url, auth, 0, data.subarray(0, 300));
      assert.equal(first.status, 204);
      const last = await patchUpload(url, auth, 300, data.subarray(300), { 'Upload-Length': String(data.length) });
      await expectProblem(last, 415, 'type_not_allowed', 'final PATCH', 'PATCH');
      await assertNothingLeft(url);
    });

    test('the head survives a restart between PATCHes and is still checked', async () => {
      const created = await createUpload(server.url, auth, 10_000, { filename: 'movie.mp4', filetype: 'video/mp4' });
      const url = created.headers.get('location')!;
      const data = disguisedExe(10_000);
      assert.equal((await patchUpload(url, auth, 0, data.subarray(0, 2000))).status, 204);
      await server.stop({ keepData: true });
      server = await startTestServer({ storage: backend, env, dataDir: server.dataDir });
      const resumed = url.replace(/^http:\/\/[^/]+/, server.url);
      await expectProblem(await patchUpload(resumed, auth, 2000, data.subarray(2000)), 415, 'type_not_allowed', 'PATCH after restart', 'PATCH');
      await assertNothingLeft(resumed);
    });

    test('allowed files pass, and the server keeps serving after every refusal', async () => {
      const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data: pngBytes(), chunkSize: 10, metadata: { filename: 'dot.png', filetype: 'image/png' } }).done;
      const record = await (await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(fileKey!)}`, { headers: auth })).json();
      assert.equal(record.detected_type, 'image/png');
      const res = await fetch(`${server.url}/v1/files/${encodeURIComponent(fileKey!)}`, { method: 'DELETE', headers: auth });
      assert.equal(res.status, 200);
    });
  });

  describe(`content checks: an allow list (${backend})`, () => {
    let server: TestServer;
    let auth: Record<string, string>;
    before(async () => {
      server = await startTestServer({ storage: backend, env: { ALLOWED_TYPES: 'image/*,.png,.jpg' } });
      auth = { Authorization: `Bearer ${await server.token('ally')}` };
    });
    after(() => server.stop());

    test('declared type and extension must be on the list; bytes that say otherwise are refused', async () => {
      await expectProblem(await createUpload(server.url, auth, 10, { filename: 'a.txt', filetype: 'image/png' }), 415, 'type_not_allowed', 'extension', 'POST');
      await expectProblem(await createUpload(server.url, auth, 10, { filename: 'a.png', filetype: 'text/plain' }), 415, 'type_not_allowed', 'declared type', 'POST');
      // Without a declared type the extension's type is judged: image/png for a.png.
      assert.equal((await createUpload(server.url, auth, 10, { filename: 'a.png' })).status, 201, 'no declared type');
      const { done } = tusUpload({ endpoint: server.url, headers: auth, data: pdfBytes(), metadata: { filename: 'scan.jpg', filetype: 'image/jpeg' } });
      const error = await done.then(() => null, (e: { originalResponse?: { getStatus(): number } }) => e);
      assert.equal(error?.originalResponse?.getStatus(), 415);
      const ok = await tusUpload({ endpoint: server.url, headers: auth, data: jpegBytes(), metadata: { filename: 'photo.jpg', filetype: 'image/jpeg' } }).done;
      assert.ok(ok.fileKey);
    });
  });
}
