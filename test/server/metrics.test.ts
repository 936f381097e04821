// /metrics after real traffic, parsed from the Prometheus text exposition; and who may read it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createUpload, tusUpload } from '../helpers/tus.ts';
import { expectProblem } from '../helpers/problem.ts';
import { until } from '../helpers/until.ts';

const METRICS_TOKEN = 'metrics-token-0123456789';

/** name{labels} → value, labels in the order the exposition gives them. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(match, `not an exposition line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

function sample(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  let found = false;
  for (const [key, value] of samples) {
    const [metric, rest = ''] = key.split('{');
    if (metric !== name || !wanted.every((w) => rest.includes(w))) continue;
    total += value;
    found = true;
  }
  assert.ok(found, `no sample ${name} ${JSON.stringify(labels)}`);
  return total;
}

describe('/metrics', () => {
  let server: TestServer;
  let clock = Date.now();
  let auth: Record<string, string>;
  const scrape = async () => {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    return parseExposition(await res.text());
  };

  before(async () => {
    server = await startTestServer({ env: { QUOTA_DEFAULT_BYTES: String(100_000_000), UPLOAD_EXPIRY_SECONDS: '60', METRICS_TOKEN }, now: () => clock });
    auth = { Authorization: `Bearer ${await server.token('max')}` };
  });
  after(() => server.stop());

  test('counts requests, bytes, upload lifecycle, hooks, quota, active uploads and open downloads', async () => {
    // Large enough that a paused client holds the download open (socket buffers take a few MiB).
    const data = randomBytes(48 * 1024 * 1024);
    const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data, metadata: { filename: 'a.bin' } }).done;
    await assert.rejects(tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(1000), metadata: { filename: 'b.bin', sha256: '0'.repeat(64) } }).done, /460/);
    assert.equal((await createUpload(server.url, auth, 60_000_000)).status, 413, 'over the quota');
    assert.equal((await createUpload(server.url, auth, 10)).status, 201, 'one that will expire');
    assert.equal((await createUpload(server.url, auth, 10)).status, 201, 'one that stays unfinished');
    clock += 61_000;
    // Created after the jump: not idle, it stays.
    const pending = (await createUpload(server.url, auth, 10)).headers.get('location')!;
    // Swept here; the housekeeping timer may sweep first, so the counter says what expired.
    await server.services.lifecycle.expire();
    await until('both idle uploads to expire', async () => sample(await scrape(), 'sl_uploads_total', { event: 'expired' }) === 2);

    const link = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(fileKey!)}`, { headers: auth })).json()).url as string;
    assert.equal((await (await fetch(link)).arrayBuffer()).byteLength, data.length);

    // A download held open half-way shows in the gauge until the client goes away.
    const held = await new Promise<http.IncomingMessage>((resolve) => http.get(link, resolve));
    await new Promise((r) => held.once('readable', r));
    const during = await scrape();
    assert.equal(sample(during, 'sl_downloads_open'), 1);
    held.destroy();
    // The server learns of the closed socket on its own time.
    const m = await until('the held download to end on the server', async () => {
      const now = await scrape();
      return sample(now, 'sl_downloads_open') === 0 && now;
    });
    assert.equal(sample(m, 'sl_uploads_total', { event: 'created' }), 5);
    assert.equal(sample(m, 'sl_uploads_total', { event: 'finished' }), 1);
    assert.equal(sample(m, 'sl_uploads_total', { event: 'failed' }), 1);
    assert.equal(sample(m, 'sl_uploads_total', { event: 'expired' }), 2);
    assert.equal(sample(m, 'sl_quota_rejections_total'), 1);
    assert.equal(sample(m, 'sl_uploads_active'), 1, `only ${pending} is still unfinished`);
    assert.equal(sample(m, 'sl_uploads_receiving'), 0);
    assert.equal(sample(m, 'sl_hook_duration_seconds_count', { hook: 'finish', outcome: 'ok' }), 1);
    assert.equal(sample(m, 'sl_hook_duration_seconds_count', { hook: 'finish', outcome: 'checksum_mismatch' }), 1);
    assert.equal(sample(m, 'sl_hook_duration_seconds_count', { hook: 'create', outcome: 'quota_exceeded' }), 1);
    assert.ok(sample(m, 'sl_hook_duration_seconds_count', { hook: 'expire' }) >= 2);
    assert.equal(sample(m, 'sl_http_requests_total', { method: 'GET', route: '/get/:encoded', status: '200' }), 2);
    assert.equal(sample(m, 'sl_http_requests_total', { method: 'POST', route: '/v1/uploads', status: '413' }), 1);
    assert.ok(sample(m, 'sl_http_received_bytes_total', { route: '/v1/uploads/:id' }) >= data.length);
    assert.ok(sample(m, 'sl_http_sent_bytes_total', { route: '/get/:encoded' }) >= data.length);
    assert.ok(sample(m, 'sl_http_request_duration_seconds_count', { route: '/get/:encoded' }) >= 2);
    assert.ok(sample(m, 'sl_process_resident_memory_bytes') > 0, 'process metrics too');
  });

  test('readable from this machine directly, or with the metrics token; not through a proxy without it', async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
    await expectProblem(await fetch(`${server.url}/metrics`, { headers: { 'X-Forwarded-For': '203.0.113.5' } }), 403, 'forbidden');
    await expectProblem(await fetch(`${server.url}/metrics`, { headers: { Forwarded: 'for=203.0.113.5' } }), 403, 'forbidden');
    await expectProblem(await fetch(`${server.url}/metrics`, { headers: { Authorization: 'Bearer wrong-token-000000000' } }), 401, 'invalid_token');
    const withToken = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}`, 'X-Forwarded-For': '203.0.113.5' } });
    assert.equal(withToken.status, 200);
    assert.match(await withToken.text(), /sl_http_requests_total/);
  });
});
