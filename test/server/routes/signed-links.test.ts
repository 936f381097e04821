// Signed links over real HTTP: every Range form, conditional requests, HEAD, expiry, tampering of
// each signed value, key rotation, deleted files, and a client that aborts mid-download.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startTestServer, tempDir, type TestServer } from '../../helpers/server.ts';
import { backendsUnderTest } from '../../helpers/s3.ts';
import { tusUpload } from '../../helpers/tus.ts';

const KEY_A = 'a'.repeat(40);
const KEY_B = 'b'.repeat(40);

for (const backend of backendsUnderTest()) {
  describe(`signed links (${backend})`, () => {
    let server: TestServer;
    let clock = Date.now();
    let auth: Record<string, string>;
    const data = randomBytes(100_000);
    let key: string;
    let link: string;
    const dataDir = tempDir();

    before(async () => {
      server = await startTestServer({ storage: backend, dataDir, env: { UPLOAD_SIGNING_KEY: KEY_A }, now: () => clock });
      auth = { Authorization: `Bearer ${await server.token('mia', 30 * 86400)}` };
      key = (await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'Résumé "final".pdf', filetype: 'application/pdf' } }).done).fileKey!;
      const res = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}&ttl=600`, { headers: auth });
      assert.equal(res.status, 200);
      const body = await res.json();
      link = body.url;
      assert.equal(new Date(body.expires_at).getTime(), (Math.floor(clock / 1000) + 600) * 1000);
    });
    after(() => server.stop());

    const get = (url: string, headers: Record<string, string> = {}, method = 'GET') => fetch(url, { method, headers });

    test('GET serves the bytes with validators, type, disposition and no-sniff', async () => {
      const res = await get(link);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
      assert.equal(res.headers.get('accept-ranges'), 'bytes');
      assert.equal(res.headers.get('etag'), `"${createHash('sha256').update(data).digest('hex')}"`);
      assert.ok(res.headers.get('last-modified'));
      assert.equal(res.headers.get('content-type'), 'application/pdf');
      assert.equal(res.headers.get('content-length'), String(data.length));
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.match(res.headers.get('cache-control')!, /private/);
      const cd = res.headers.get('content-disposition')!;
      assert.match(cd, /^attachment; filename="[^"]*"; filename\*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22\.pdf$/);
    });

    test('HEAD answers the same headers without a body', async () => {
      const res = await get(link, {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(data.length));
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });

    const ranges: Array<[string, number, [number, number] | null]> = [
      ['bytes=0-0', 206, [0, 0]],
      ['bytes=0-99', 206, [0, 99]],
      ['bytes=99999-99999', 206, [99_999, 99_999]],
      ['bytes=99990-', 206, [99_990, 99_999]],
      ['bytes=-10', 206, [99_990, 99_999]],
      ['bytes=0-99999', 206, [0, 99_999]],
      ['bytes=0-', 206, [0, 99_999]],
      ['bytes=50000-200000', 206, [50_000, 99_999]],
      ['bytes=-200000', 206, [0, 99_999]],
      ['bytes=100000-', 416, null],
      ['bytes=100000-100001', 416, null],
      ['bytes=-0', 416, null],
      ['bytes=5-2', 200, null],
      ['bytes=abc', 200, null],
      ['items=0-5', 200, null],
      ['bytes=0-1,5-6', 200, null],
    ];
    for (const [range, status, span] of ranges) {
      test(`Range ${range} → ${status}`, async () => {
        const res = await get(link, { Range: range });
        assert.equal(res.status, status);
        const body = Buffer.from(await res.arrayBuffer());
        if (status === 206) {
          const [start, end] = span!;
          assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
          assert.equal(res.headers.get('content-length'), String(end - start + 1));
          assert.ok(body.equals(data.subarray(start, end + 1)));
        } else if (status === 416) {
          assert.equal(res.headers.get('content-range'), `bytes */${data.length}`);
          assert.equal(res.headers.get('content-type'), 'application/problem+json');
        } else {
          assert.ok(body.equals(data));
        }
      });
    }

    test('conditional requests: If-None-Match, If-Modified-Since, If-Range', async () => {
      const etag = (await get(link, {}, 'HEAD')).headers.get('etag')!;
      const lastModified = (await get(link, {}, 'HEAD')).headers.get('last-modified')!;
      assert.equal((await get(link, { 'If-None-Match': etag })).status, 304);
      assert.equal((await get(link, { 'If-None-Match': `W/${etag}` })).status, 304);
      assert.equal((await get(link, { 'If-None-Match': '"other"' })).status, 200);
      assert.equal((await get(link, { 'If-Modified-Since': lastModified })).status, 304);
      assert.equal((await get(link, { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status, 200);
      assert.equal((await get(link, { Range: 'bytes=0-9', 'If-Range': etag })).status, 206);
      const stale = await get(link, { Range: 'bytes=0-9', 'If-Range': '"stale"' });
      assert.equal(stale.status, 200);
      assert.equal(stale.headers.get('content-length'), String(data.length));
      assert.equal((await get(link, { Range: 'bytes=0-9', 'If-Range': lastModified })).status, 206);
    });

    test('tampering with any signed value answers 403; the link itself still works', async () => {
      const url = new URL(link);
      const encoded = url.pathname.split('/').pop()!;
      const variants: Record<string, string> = {};
      const sig = url.searchParams.get('sig')!;
      const withParam = (name: string, value: string) => {
        const u = new URL(link);
        u.searchParams.set(name, value);
        return u.toString();
      };
      variants.sig = withParam('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
      variants.exp = withParam('exp', String(Number(url.searchParams.get('exp')) + 3600));
      variants.disposition = withParam('disposition', 'inline');
      const otherKey = Buffer.from(key.replace(/.\.pdf$/, (m) => (m[0] === '0' ? '1' : '0') + '.pdf')).toString('base64url');
      variants.key = link.replace(encoded, otherKey);
      variants.garbageKey = link.replace(encoded, '%%%');
      variants.noSig = link.replace(/&sig=[^&]*/, '');
      for (const [what, tampered] of Object.entries(variants)) {
        const res = await get(tampered);
        assert.equal(res.status, 403, what);
        assert.equal((await res.json()).code, 'invalid_signature', what);
      }
      assert.equal((await get(link)).status, 200);
    });

    test('inline disposition and another user: the link mints only for the owner', async () => {
      const inline = await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}&disposition=inline`, { headers: auth })).json();
      assert.match((await get(inline.url)).headers.get('content-disposition')!, /^inline; /);
      const other = { Authorization: `Bearer ${await server.token('noah', 30 * 86400)}` };
      const res = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: other });
      assert.equal(res.status, 404);
      const service = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: { 'X-Service-Token': server.serviceToken } });
      assert.equal(service.status, 200);
      for (const bad of ['ttl=0', 'ttl=604801', 'ttl=abc', 'disposition=evil']) {
        const r = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}&${bad}`, { headers: auth });
        assert.equal(r.status, 400, bad);
        assert.equal((await r.json()).code, 'invalid_parameter');
      }
    });

    test('a client that aborts mid-download leaves no open descriptor and the server keeps serving', async () => {
      const big = randomBytes(24 * 1024 * 1024);
      const bigKey = (await tusUpload({ endpoint: server.url, headers: auth, data: big, metadata: { filename: 'big.bin' } }).done).fileKey!;
      const bigLink = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(bigKey)}`, { headers: auth })).json()).url;
      const fds = () => readdirSync('/proc/self/fd').length;
      const baseline = fds();
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = http.get(bigLink, (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          });
          req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(e)));
        });
      }
      for (let i = 0; i < 50 && fds() > baseline + 1; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(fds() <= baseline + 1, `descriptors: ${baseline} before, ${fds()} after`);
      const whole = Buffer.from(await (await get(bigLink)).arrayBuffer());
      assert.ok(whole.equals(big));
    });

    test('a deleted file answers 404', async () => {
      const k = (await tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from('bye'), metadata: { filename: 'bye.txt' } }).done).fileKey!;
      const l = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(k)}`, { headers: auth })).json()).url;
      assert.equal((await get(l)).status, 200);
      await fetch(`${server.url}/v1/files/${k}`, { method: 'DELETE', headers: auth });
      assert.equal((await get(l)).status, 404);
    });

    test('bytes that vanished behind a ready record answer 410 file_missing, on GET and HEAD', async () => {
      const k = (await tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from('gone'), metadata: { filename: 'gone.txt' } }).done).fileKey!;
      const l = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(k)}`, { headers: auth })).json()).url;
      await server.services.storage.removeFile(k); // behind the record's back (an operator, a disk fault)
      for (const method of ['GET', 'HEAD']) {
        const res = await get(l, {}, method);
        assert.equal(res.status, 410, method);
        if (method === 'GET') assert.equal((await res.json()).code, 'file_missing');
      }
      assert.equal((await get(link)).status, 200, 'the server keeps serving');
    });

    test('expired links answer 410', async () => {
      const short = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}&ttl=5`, { headers: auth })).json()).url;
      assert.equal((await get(short)).status, 200);
      clock += 5000;
      const res = await get(short);
      assert.equal(res.status, 410);
      assert.equal((await res.json()).code, 'link_expired');
      clock -= 5000;
    });

    test('key rotation: links signed with the old key work while it is listed', async () => {
      await server.stop({ keepData: true });
      server = await startTestServer({ storage: backend, dataDir, env: { UPLOAD_SIGNING_KEY: `${KEY_B},${KEY_A}` }, now: () => clock });
      link = link.replace(/^http:\/\/[^/]+/, server.url);
      assert.equal((await get(link)).status, 200);
      const fresh = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth })).json()).url;
      assert.equal((await get(fresh)).status, 200);
      await server.stop({ keepData: true });
      server = await startTestServer({ storage: backend, dataDir, env: { UPLOAD_SIGNING_KEY: KEY_B }, now: () => clock });
      assert.equal((await get(link.replace(/^http:\/\/[^/]+/, server.url))).status, 403);
      assert.equal((await get(fresh.replace(/^http:\/\/[^/]+/, server.url))).status, 200);
    });
  });
}
