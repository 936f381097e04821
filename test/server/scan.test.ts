// Virus scanning with a real clamd (Debian's clamav-daemon, test/support/clamd.ts) and the real
// server on both storage backends: clean and infected files, clamd away and back, our server
// restarted with scans pending or cut, a file past clamd's StreamMaxLength, a file that cannot be
// read, shutdown during a scan, scanning turned on for old files and off again, and the clamd
// client itself (more of it in test/server/scan/clamd.test.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createClamd, ClamdUnavailable } from '../../server/scan/clamd.ts';
import { expectProblem } from '../helpers/problem.ts';
import { recordCount, recordQuery, recordRows } from '../helpers/records.ts';
import { backendsUnderTest } from '../helpers/s3.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { tusUpload } from '../helpers/tus.ts';
import { until } from '../helpers/until.ts';
import { EICAR, EICAR_SIGNATURE, startClamd, type ClamdProcess } from '../support/clamd.ts';

const MiB = 1024 * 1024;

describe('clamd client (INSTREAM) against a real clamd', () => {
  let clamd: ClamdProcess;
  before(async () => (clamd = await startClamd({ streamMaxLength: '1M' })));
  after(() => clamd?.dispose());

  test('clean, found, size limit, and unavailable', async () => {
    const client = createClamd({ address: { socket: clamd.socket }, timeoutMs: 10_000 });
    assert.equal(await client.ping(), true);
    assert.deepEqual(await client.scan(Readable.from([randomBytes(300 * 1024)])), { status: 'clean' });
    // The signature split across chunks of the stream is still found.
    const infected = Buffer.from(`prefix ${EICAR} suffix`, 'latin1');
    assert.deepEqual(await client.scan(Readable.from([infected.subarray(0, 20), infected.subarray(20)])), { status: 'infected', signature: EICAR_SIGNATURE });
    // Past StreamMaxLength clamd answers and closes while we are still sending: its reply when it
    // was read in time, else a hang-up that PING tells apart from clamd being away. Either is an error.
    const tooLong = await client.scan(Readable.from([Buffer.alloc(3 * MiB, 1)]));
    assert.equal(tooLong.status, 'error');
    assert.match((tooLong as { message: string }).message, /INSTREAM size limit exceeded|StreamMaxLength/);
    await clamd.stop();
    assert.equal(await client.ping(), false);
    await assert.rejects(client.scan(Readable.from([Buffer.from('x')])), ClamdUnavailable);
    await clamd.restart();
    assert.deepEqual(await client.scan(Readable.from([Buffer.from('back')])), { status: 'clean' });
  });
});

for (const backend of backendsUnderTest()) {
  describe(`virus scanning (${backend})`, () => {
    let clamd: ClamdProcess;
    let server: TestServer;
    let auth: Record<string, string>;
    const env = () => ({ CLAMD_SOCKET: clamd.socket, SCAN_RETRY_MAX_SECONDS: '1', CLAMD_TIMEOUT_SECONDS: '10' });
    before(async () => {
      clamd = await startClamd({ streamMaxLength: '1M' });
      server = await startTestServer({ storage: backend, env: env() });
      auth = { Authorization: `Bearer ${await server.token('vic')}` };
    });
    after(async () => {
      await server?.stop();
      await clamd?.dispose();
    });

    const upload = async (data: Buffer, filename: string) =>
      (await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename } }).done).fileKey!;
    const record = async (key: string) => {
      const res = await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: auth });
      assert.equal(res.status, 200);
      return (await res.json()) as { scan_status: string | null; scan_signature: string | null; size: number };
    };
    const settled = (key: string, status: string) => until(`${key} ${status}`, async () => ((await record(key)).scan_status === status ? record(key) : false));
    const link = async (key: string) => {
      const res = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth });
      assert.equal(res.status, 200, 'a link can be made whatever the verdict; the download decides');
      return (await res.json()).url as string;
    };
    const batch = (keys: string[]) =>
      fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ keys }) });
    const metric = async (name: string) => {
      const line = (await (await fetch(`${server.url}/metrics`)).text()).split('\n').find((l) => l.startsWith(name));
      return line ? Number(line.split(' ').pop()) : NaN;
    };

    test('a clean file is scanned after its upload and served; listings show the verdict', async () => {
      const data = randomBytes(200 * 1024);
      const key = await upload(data, 'clean.bin');
      const file = await settled(key, 'clean');
      assert.equal(file.scan_signature, null);
      const res = await fetch(await link(key));
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
      const listed = (await (await fetch(`${server.url}/v1/files/all`, { headers: auth })).json()).files.find((f: { key: string }) => f.key === key);
      assert.equal(listed.scan_status, 'clean');
      assert.equal((await batch([key])).status, 200);
      assert.ok((await metric('sl_scans_total{verdict="clean"}')) >= 1);
    });

    test('an infected file is quarantined: never served, visible to its owner, deletable', async () => {
      const key = await upload(Buffer.from(`hello ${EICAR} world`, 'latin1'), 'eicar.com.txt');
      const file = await settled(key, 'infected');
      assert.equal(file.scan_signature, EICAR_SIGNATURE);
      const url = await link(key);
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(url, { method });
        assert.equal(res.status, 403, method);
        if (method === 'GET') await expectProblem(res, 403, 'infected', 'signed GET');
      }
      await expectProblem(await batch([key]), 403, 'infected', 'batch with an infected file');
      const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal((await fetch(`${server.url}/v1/files/${key}`, { method: 'DELETE', headers: auth })).status, 200);
      const after = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
      assert.equal(after.used_bytes, usage.used_bytes - file.size, 'the quota is freed');
      assert.equal(await server.readStored(key), null, 'the bytes are gone');
    });

    test('every recorded byte is scanned, from an empty file to a signature ending at the last byte', async () => {
      // The scan reads a file as the range its record gives: an end one byte short would miss this.
      const atTheEnd = await upload(Buffer.concat([randomBytes(300 * 1024), Buffer.from(EICAR, 'latin1')]), 'ends-infected.bin');
      assert.equal((await settled(atTheEnd, 'infected')).scan_signature, EICAR_SIGNATURE);
      const empty = await upload(Buffer.alloc(0), 'empty.txt');
      assert.equal((await settled(empty, 'clean')).size, 0);
      const res = await fetch(await link(empty));
      assert.equal(res.status, 200);
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });

    test('clamd away: the upload still finishes at once, the file waits as pending (409 with Retry-After), and is scanned when clamd is back', async () => {
      await clamd.stop();
      const key = await upload(randomBytes(10_000), 'waiting.bin'); // the final PATCH answered without clamd
      // 'scanning' while the worker finds clamd gone, then 'pending' again.
      assert.match(String((await record(key)).scan_status), /^(pending|scanning)$/);
      const url = await link(key);
      const res = await fetch(url);
      await expectProblem(res, 409, 'scan_pending', 'signed GET while pending');
      assert.equal(res.headers.get('retry-after'), '5');
      await expectProblem(await batch([key]), 409, 'scan_pending', 'batch while pending');
      await until('sl_clamd_up 0', async () => (await metric('sl_clamd_up')) === 0);
      assert.ok((await metric('sl_scan_queue_depth')) >= 1);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200, 'clamd away does not fail health');
      assert.deepEqual((await health.json()).scan, { clamd: 'down', queue_depth: 1 });
      await clamd.restart();
      await settled(key, 'clean');
      assert.equal((await fetch(url)).status, 200);
      assert.equal(await metric('sl_clamd_up'), 1);
      assert.deepEqual((await (await fetch(`${server.url}/healthz`)).json()).scan, { clamd: 'up', queue_depth: 0 });
    });

    test('scans pending when the server stops, or cut by a crash, complete after it starts again', async () => {
      await clamd.stop();
      const keys = [await upload(randomBytes(5000), 'r1.bin'), await upload(Buffer.from(EICAR, 'latin1'), 'r2.txt')];
      for (const key of keys) assert.match(String((await record(key)).scan_status), /^(pending|scanning)$/);
      await server.stop({ keepData: true });
      // As if the server had died while clamd was reading the second file.
      assert.equal((await recordQuery(server.dataDir, "UPDATE files SET scan_status = 'scanning' WHERE key = ?", keys[1]!)).changes, 1);
      await clamd.restart();
      server = await startTestServer({ storage: backend, dataDir: server.dataDir, env: env() });
      await settled(keys[0]!, 'clean');
      const infected = await settled(keys[1]!, 'infected');
      assert.equal(infected.scan_signature, EICAR_SIGNATURE);
    });

    test('a file past clamd\'s StreamMaxLength ends as error and is not served; the server keeps serving', async () => {
      const key = await upload(randomBytes(2 * MiB), 'too-big.bin');
      await settled(key, 'error');
      await expectProblem(await fetch(await link(key)), 403, 'scan_failed', 'signed GET of an unscannable file');
      assert.ok((await metric('sl_scans_total{verdict="error"}')) >= 1);
      const small = await upload(randomBytes(1000), 'after.bin');
      await settled(small, 'clean');
      assert.equal((await fetch(await link(small))).status, 200);
    });

    test('a file whose bytes cannot be read waits as pending and is retried; it never becomes an error verdict', async () => {
      await clamd.stop(); // no verdict before its bytes go
      const key = await upload(randomBytes(3000), 'unreadable.bin');
      await server.services.storage.removeFile(key); // behind the record's back (an operator, a disk or S3 fault)
      await clamd.restart();
      const before = await metric('sl_scan_retries_total{reason="storage"}');
      await until('three failed reads', async () => (await metric('sl_scan_retries_total{reason="storage"}')) >= before + 3);
      assert.equal((await record(key)).scan_status, 'pending');
      assert.equal((await fetch(`${server.url}/v1/files/${encodeURIComponent(key)}`, { method: 'DELETE', headers: auth })).status, 200);
      assert.equal(await server.services.repo.scans.job(key), undefined, 'its job went with it');
    });
  });

  describe(`virus scanning: shutdown during a scan (${backend})`, () => {
    test('closing the server aborts a scan in flight; its job stays and completes at the next start', async () => {
      // A "clamd" that takes the bytes and never answers: the scan can only end by being aborted.
      const sockets: net.Socket[] = [];
      const silent = net.createServer((socket) => (sockets.push(socket), socket.resume()));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const clamd = await startClamd();
      let server = await startTestServer({
        storage: backend,
        env: { CLAMD_HOST: '127.0.0.1', CLAMD_PORT: String((silent.address() as AddressInfo).port), CLAMD_TIMEOUT_SECONDS: '3600' },
      });
      try {
        const auth = { Authorization: `Bearer ${await server.token('stu')}` };
        const key = (await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(4000), metadata: { filename: 's.bin' } }).done).fileKey!;
        const status = async () => (await (await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: auth })).json()).scan_status;
        await until('the scan to start', async () => (await status()) === 'scanning');
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('close waited for the scan')), 30_000)));
        await Promise.race([server.stop({ keepData: true }), deadline]).finally(() => clearTimeout(timer));
        assert.deepEqual(await recordRows(server.dataDir, 'SELECT scan_status FROM files WHERE key = ?', key), [{ scan_status: 'pending' }]);
        assert.equal(await recordCount(server.dataDir, 'SELECT count(*) AS n FROM scan_jobs WHERE key = ?', key), 1);
        server = await startTestServer({ storage: backend, dataDir: server.dataDir, env: { CLAMD_SOCKET: clamd.socket } });
        await until('the scan after the restart', async () => (await status()) === 'clean');
      } finally {
        await server.stop();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
        await clamd.dispose();
      }
    });
  });

  describe(`virus scanning turned on and off (${backend})`, () => {
    test('files recorded while scanning was off are queued once it is on; quarantine outlasts turning it off', async () => {
      const clamd = await startClamd();
      const dataDir = tempDir();
      let server = await startTestServer({ storage: backend, dataDir });
      try {
        const auth = { Authorization: `Bearer ${await server.token('olga')}` };
        const upload = async (data: Buffer, filename: string) =>
          (await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename } }).done).fileKey!;
        const record = async (key: string) => (await (await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: auth })).json()) as { scan_status: string | null };
        const get = async (key: string) => {
          const minted = await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(key)}`, { headers: auth });
          return fetch((await minted.json()).url);
        };
        const restart = async (env: Record<string, string>) => {
          await server.stop({ keepData: true });
          server = await startTestServer({ storage: backend, dataDir, env });
        };

        const cleanKey = await upload(Buffer.from('from before\n'), 'before.txt');
        const eicarKey = await upload(Buffer.from(EICAR, 'latin1'), 'before.com');
        assert.equal((await record(cleanKey)).scan_status, null, 'not scanned while scanning is off');
        const served = await get(eicarKey);
        assert.equal(served.status, 200, 'unscanned files are served while scanning is off');
        await served.arrayBuffer();
        assert.equal('scan' in (await (await fetch(`${server.url}/healthz`)).json()), false, 'no scan report while scanning is off');

        await restart({ CLAMD_SOCKET: clamd.socket });
        await until('the backfilled scans', async () => (await record(cleanKey)).scan_status === 'clean' && (await record(eicarKey)).scan_status === 'infected');
        await expectProblem(await get(eicarKey), 403, 'infected', 'after the backfill');

        await restart({});
        await expectProblem(await get(eicarKey), 403, 'infected', 'with scanning off again');
        const clean = await get(cleanKey);
        assert.equal(clean.status, 200);
        assert.equal(await clean.text(), 'from before\n');
      } finally {
        await server.stop();
        await clamd.dispose();
      }
    });
  });
}

describe('virus scanning: the file.scanned webhook', () => {
  test('each verdict is announced after upload.finished, with the signature of an infected file', async () => {
    const clamd = await startClamd();
    const received: Array<{ type: string; data: Record<string, unknown> }> = [];
    const receiver = http.createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8').on('data', (c: string) => (raw += c)).on('end', () => {
        received.push(JSON.parse(raw));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const server = await startTestServer({
      env: {
        CLAMD_SOCKET: clamd.socket,
        WEBHOOK_URLS: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in`,
        WEBHOOK_SECRET: 'w'.repeat(32),
      },
    });
    try {
      const auth = { Authorization: `Bearer ${await server.token('sam')}` };
      const key = (await tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from(EICAR, 'latin1'), metadata: { filename: 'e.txt' } }).done).fileKey!;
      const scanned = await until('file.scanned', () => received.find((e) => e.type === 'file.scanned'));
      assert.deepEqual(scanned.data, { upload_id: scanned.data.upload_id, key, user_id: 'sam', scan_status: 'infected', signature: EICAR_SIGNATURE });
      assert.deepEqual(received.filter((e) => e.data.upload_id === scanned.data.upload_id).map((e) => e.type), ['upload.created', 'upload.finished', 'file.scanned']);
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
      await clamd.dispose();
    }
  });
});
