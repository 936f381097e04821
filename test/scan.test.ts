// Virus scanning end to end: a real clamd (test/support/clamd.ts, a hand-written EICAR signature),
// the real server, tus-js-client and fetch. Verdicts arrive after the final PATCH has answered, so
// every wait polls the file's metadata until its status changes (with a deadline; no durations
// are asserted).
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { signBatchToken } from '../server/http/link-signing.ts';
import { signUrl } from '../server/routes/signed-links.ts';
import { expectProblem } from './helpers/problem.ts';
import { backendsUnderTest } from './helpers/s3.ts';
import { startTestServer, tempDir, type TestServer } from './helpers/server.ts';
import { tusUpload } from './helpers/tus.ts';
import { EICAR, EICAR_SIGNATURE, startClamd, type ClamdServer } from './support/clamd.ts';

/** Long enough for a busy 2-core machine; a verdict normally takes milliseconds. */
const DEADLINE_MS = 60_000;
/** clamd's StreamMaxLength in these tests, and a file over it. */
const STREAM_MAX = '256K';
const OVER_STREAM_MAX = 400 * 1024;

interface FileRecord {
  key: string;
  size: number;
  scan_status: string | null;
  scan_signature: string | null;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A client of one server: uploads, records, links, ZIPs. */
function clientOf(getServer: () => TestServer, auth: () => Record<string, string>) {
  const api = (route: string, init: RequestInit = {}) => fetch(`${getServer().url}${route}`, { ...init, headers: { ...auth(), ...init.headers } });
  const client = {
    api,
    async upload(data: Buffer, filename: string): Promise<{ key: string; status: number; record: FileRecord }> {
      const done = await tusUpload({ endpoint: getServer().url, headers: auth(), data, metadata: { filename } }).done;
      return { key: done.fileKey!, status: done.status, record: JSON.parse(done.body) as FileRecord };
    },
    async record(key: string): Promise<FileRecord> {
      const res = await api(`/v1/files/metadata/${encodeURIComponent(key)}`);
      assert.equal(res.status, 200, `metadata of ${key}`);
      return (await res.json()) as FileRecord;
    },
    /** Polls until the file has a verdict (clean, infected or error). */
    verdict(key: string): Promise<FileRecord> {
      return until(`a verdict on ${key}`, async () => {
        const record = await client.record(key);
        return ['clean', 'infected', 'error'].includes(record.scan_status ?? '') ? record : undefined;
      });
    },
    /** A signed link made without asking the server (minting may refuse; the GET must refuse on its own). */
    link(key: string): string {
      const server = getServer();
      const { repo, storage, signingKeys } = server.services;
      return signUrl({ repo, storage, signingKeys, defaultTtlSeconds: 3600, publicUrl: () => server.url, now: Date.now }, key, 3600, 'attachment').url;
    },
    /** A batch link made without asking the server. */
    zipLink(userId: string, keys: string[]): string {
      const server = getServer();
      const token = signBatchToken({ userId, keys, exp: Math.floor(Date.now() / 1000) + 3600 }, server.services.signingKeys[0]!);
      return `${server.url}/v1/files/batch-download/${token}`;
    },
    mint(key: string): Promise<Response> {
      return api(`/v1/files/signed-url?key=${encodeURIComponent(key)}`);
    },
    batch(keys: string[]): Promise<Response> {
      return api('/v1/files/batch-download', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ keys }) });
    },
    async usedBytes(): Promise<number> {
      return ((await (await api('/v1/usage')).json()) as { used_bytes: number }).used_bytes;
    },
  };
  return client;
}

async function scrape(server: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const escaped = name.replace(/[{}"]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  assert.ok(match, `no sample ${name}`);
  return Number(match[1]);
}

for (const backend of backendsUnderTest()) {
  describe(`virus scanning (${backend})`, () => {
    let daemon: ClamdServer;
    let server: TestServer;
    let token: string;
    const env = () => ({ ...daemon.env, SCAN_RETRY_MAX_SECONDS: '1' });
    const client = clientOf(() => server, () => ({ Authorization: `Bearer ${token}` }));

    before(async () => {
      daemon = await startClamd({ streamMaxLength: STREAM_MAX });
      server = await startTestServer({ storage: backend, env: env() });
      token = await server.token('vera');
    });
    after(async () => {
      await server.stop();
      await daemon.remove();
    });

    test('a clean file: the final PATCH answers with it pending, then it is scanned clean and served', async () => {
      const data = randomBytes(50_000);
      const { key, status, record } = await client.upload(data, 'notes.bin');
      assert.equal(status, 200);
      assert.equal(record.scan_status, 'pending', 'the answer comes before the scan');
      const scanned = await client.verdict(key);
      assert.equal(scanned.scan_status, 'clean');
      assert.equal(scanned.scan_signature, null);

      const minted = await client.mint(key);
      assert.equal(minted.status, 200);
      const res = await fetch((await minted.json()).url);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
      const batch = await client.batch([key]);
      assert.equal(batch.status, 200);
      const zip = await fetch((await batch.json()).url);
      assert.equal(zip.status, 200);
      assert.equal(zip.headers.get('content-type'), 'application/zip');
      await zip.arrayBuffer();

      const list = (await (await client.api('/v1/files/all')).json()) as { files: FileRecord[] };
      assert.equal(list.files.find((f) => f.key === key)?.scan_status, 'clean');
      assert.ok((await scrape(server, 'sl_scans_total{verdict="clean"}')) >= 1);
      assert.ok((await scrape(server, 'sl_scan_duration_seconds_count')) >= 1);
      assert.equal(await scrape(server, 'sl_clamd_up'), 1);
    });

    test('an infected file is quarantined: never served or shared, visible to its owner, and deletable', async () => {
      const { key: cleanKey } = await client.upload(Buffer.from('harmless\n'), 'harmless.txt');
      const usedBefore = await client.usedBytes();
      const { key, record } = await client.upload(EICAR, 'eicar.com');
      assert.equal(record.scan_status, 'pending');
      const link = client.link(key);
      const scanned = await client.verdict(key);
      assert.equal(scanned.scan_status, 'infected');
      assert.equal(scanned.scan_signature, EICAR_SIGNATURE);
      const list = (await (await client.api('/v1/files/all')).json()) as { files: FileRecord[] };
      assert.deepEqual(list.files.filter((f) => f.key === key).map((f) => [f.scan_status, f.scan_signature]), [['infected', EICAR_SIGNATURE]]);
      assert.ok((await scrape(server, 'sl_scans_total{verdict="infected"}')) >= 1);

      const problem = await expectProblem(await fetch(link), 403, 'infected', 'signed GET');
      assert.match(problem!.detail!, new RegExp(EICAR_SIGNATURE.replace('.', '\\.')));
      await expectProblem(await fetch(link, { method: 'HEAD' }), 403, 'infected', 'signed HEAD', 'HEAD');
      await expectProblem(await fetch(link, { headers: { Range: 'bytes=0-9' } }), 403, 'infected', 'ranged GET');
      await expectProblem(await client.mint(key), 403, 'infected', 'minting a link');
      await client.verdict(cleanKey);
      const refused = await expectProblem(await client.batch([cleanKey, key]), 403, 'infected', 'a batch link');
      assert.ok(refused!.detail!.includes(key), 'names the owner\'s quarantined key');
      const zipRefused = await expectProblem(await fetch(client.zipLink('vera', [cleanKey, key])), 403, 'infected', 'a ZIP made before');
      assert.ok(!zipRefused!.detail!.includes(key), 'a public link names no key');

      assert.equal(await client.usedBytes(), usedBefore + EICAR.length);
      const deleted = await client.api(`/v1/files/${encodeURIComponent(key)}`, { method: 'DELETE' });
      assert.equal(deleted.status, 204);
      assert.equal(await client.usedBytes(), usedBefore);
      assert.equal(await server.readStored(key), null, 'its bytes are gone');
      await expectProblem(await client.api(`/v1/files/metadata/${encodeURIComponent(key)}`), 404, 'not_found');
      await expectProblem(await fetch(link), 404, 'not_found', 'the old link');
    });

    test("a file over clamd's StreamMaxLength ends as error, is refused as scan_failed, and the server keeps serving", async () => {
      const { key } = await client.upload(randomBytes(OVER_STREAM_MAX), 'big.bin');
      const scanned = await client.verdict(key);
      assert.equal(scanned.scan_status, 'error');
      assert.match(scanned.scan_signature ?? '', /size limit|StreamMaxLength/, 'the reason is in the record');
      await expectProblem(await fetch(client.link(key)), 403, 'scan_failed', 'signed GET');
      await expectProblem(await client.mint(key), 403, 'scan_failed', 'minting a link');
      await expectProblem(await client.batch([key]), 403, 'scan_failed', 'a batch link');
      assert.ok((await scrape(server, 'sl_scans_total{verdict="error"}')) >= 1);

      const { key: next } = await client.upload(Buffer.from('still serving\n'), 'next.txt');
      assert.equal((await client.verdict(next)).scan_status, 'clean');
      const res = await fetch(client.link(next));
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'still serving\n');
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    });

    test('with clamd down files wait as pending (409 scan_pending, Retry-After), and are scanned once it is back', async () => {
      await daemon.stop();
      try {
        const { key, status, record } = await client.upload(randomBytes(10_000), 'waiting.bin');
        assert.equal(status, 200, 'the final PATCH does not wait for clamd');
        assert.equal(record.scan_status, 'pending');
        // The worker tried, failed, and put the job back with a backoff.
        await until('a failed attempt', async () => ((server.services.scanning!.repo.job(key)?.attempts ?? 0) >= 2 ? true : undefined));
        assert.equal((await client.record(key)).scan_status, 'pending');
        const res = await fetch(client.link(key));
        await expectProblem(res, 409, 'scan_pending', 'signed GET');
        assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
        const minted = await client.mint(key);
        assert.equal(minted.status, 200, 'a link can be made while the file waits');
        const mintedUrl = ((await minted.json()) as { url: string }).url;
        await expectProblem(await fetch(mintedUrl), 409, 'scan_pending', 'the minted link');
        await expectProblem(await fetch(client.zipLink('vera', [key])), 409, 'scan_pending', 'a ZIP');

        const health = await fetch(`${server.url}/healthz`);
        assert.equal(health.status, 200, 'a clamd outage does not fail health');
        assert.deepEqual(((await health.json()) as { scan: unknown }).scan, { clamd: 'down', queue_depth: 1 });
        assert.equal(await scrape(server, 'sl_clamd_up'), 0);
        assert.equal(await scrape(server, 'sl_scan_queue_depth'), 1);
        assert.ok((await scrape(server, 'sl_scan_retries_total{reason="clamd"}')) >= 2);

        await daemon.start();
        assert.equal((await client.verdict(key)).scan_status, 'clean');
        const served = await fetch(mintedUrl);
        assert.equal(served.status, 200);
        await served.arrayBuffer();
        assert.deepEqual(((await (await fetch(`${server.url}/healthz`)).json()) as { scan: unknown }).scan, { clamd: 'up', queue_depth: 0 });
      } finally {
        if (daemon.pid === null) await daemon.start();
      }
    });

    test('scans pending at a restart, and one a crash interrupted, complete after it', async () => {
      await daemon.stop();
      const { key: cleanKey } = await client.upload(Buffer.from('clean, after a restart\n'), 'later.txt');
      const { key: eicarKey } = await client.upload(EICAR, 'later.com');
      const dataDir = server.dataDir;
      await server.stop({ keepData: true });
      // As if the server had died while clamd was reading this file.
      const db = new Database(path.join(dataDir, 'stream-line.sqlite'));
      try {
        assert.equal(db.prepare("UPDATE files SET scan_status = 'scanning' WHERE key = ?").run(eicarKey).changes, 1);
        assert.equal((db.prepare('SELECT count(*) AS n FROM scan_jobs WHERE key IN (?, ?)').get(cleanKey, eicarKey) as { n: number }).n, 2);
      } finally {
        db.close();
      }
      await daemon.start();
      server = await startTestServer({ storage: backend, env: env(), dataDir });
      token = await server.token('vera');
      assert.equal((await client.verdict(cleanKey)).scan_status, 'clean');
      assert.deepEqual(
        [(await client.verdict(eicarKey)).scan_status, (await client.record(eicarKey)).scan_signature],
        ['infected', EICAR_SIGNATURE],
      );
      assert.equal(server.services.scanning!.repo.depth(), 0, 'no job is left behind');
    });
  });

  describe(`virus scanning turned on and off (${backend})`, () => {
    let daemon: ClamdServer;
    let server: TestServer | undefined;
    const dataDir = tempDir();
    let token: string;
    const client = clientOf(() => server!, () => ({ Authorization: `Bearer ${token}` }));
    const restart = async (env: Record<string, string>) => {
      await server?.stop({ keepData: true });
      server = await startTestServer({ storage: backend, env, dataDir });
      token = await server.token('olga');
    };

    before(async () => {
      daemon = await startClamd();
    });
    after(async () => {
      await server?.stop();
      await daemon.remove();
    });

    test('files recorded while scanning was off are scanned once it is on; quarantine outlasts turning it off', async () => {
      await restart({});
      const { key: cleanKey, record } = await client.upload(Buffer.from('from before\n'), 'before.txt');
      const { key: eicarKey } = await client.upload(EICAR, 'before.com');
      assert.equal(record.scan_status, null, 'not scanned while scanning is off');
      const served = await fetch(client.link(eicarKey));
      assert.equal(served.status, 200, 'unscanned files are served while scanning is off');
      await served.arrayBuffer();

      await restart(daemon.env);
      assert.equal((await client.verdict(cleanKey)).scan_status, 'clean');
      assert.equal((await client.verdict(eicarKey)).scan_status, 'infected');
      await expectProblem(await fetch(client.link(eicarKey)), 403, 'infected', 'after the backfill');

      await restart({});
      await expectProblem(await fetch(client.link(eicarKey)), 403, 'infected', 'with scanning off again');
      const clean = await fetch(client.link(cleanKey));
      assert.equal(clean.status, 200);
      assert.equal(await clean.text(), 'from before\n');
      const health = (await (await fetch(`${server!.url}/healthz`)).json()) as Record<string, unknown>;
      assert.equal('scan' in health, false, 'no scan report while scanning is off');
    });
  });
}
