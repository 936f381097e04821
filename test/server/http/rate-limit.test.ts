// Rate limits: the token bucket itself (table-driven, with a clock the test moves), then a real
// server: signed GETs and batch ZIPs per client address and per link, failed authentications per
// address; 429 rate_limited with Retry-After; clients told apart only through the trusted proxy.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { TokenBuckets } from '../../../server/http/rate-limit.ts';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { tusUpload } from '../../helpers/tus.ts';

describe('TokenBuckets', () => {
  const cases: Array<{ name: string; rate: number; burst: number; steps: Array<[atMs: number, expectedWait: number]> }> = [
    { name: 'a full bucket lets the burst through, then waits', rate: 1, burst: 3, steps: [[0, 0], [0, 0], [0, 0], [0, 1], [500, 1], [1000, 0], [1000, 1]] },
    { name: 'refills at the rate, never beyond the burst', rate: 2, burst: 2, steps: [[0, 0], [0, 0], [0, 1], [10_000, 0], [10_000, 0], [10_000, 1]] },
    { name: 'a slow rate answers the whole seconds to wait', rate: 0.5, burst: 1, steps: [[0, 0], [0, 2], [1000, 1], [2000, 0]] },
    { name: 'rate 0 turns the limit off', rate: 0, burst: 1, steps: [[0, 0], [0, 0], [0, 0]] },
  ];
  for (const { name, rate, burst, steps } of cases) {
    test(name, () => {
      let now = 0;
      const buckets = new TokenBuckets({ ratePerSecond: rate, burst }, () => now);
      steps.forEach(([at, wait], i) => {
        now = at;
        assert.equal(buckets.take('k'), wait, `step ${i} at ${at} ms`);
      });
    });
  }

  test('keys are independent; peek does not take', () => {
    const buckets = new TokenBuckets({ ratePerSecond: 1, burst: 1 }, () => 0);
    assert.equal(buckets.peek('a'), 0);
    assert.equal(buckets.take('a'), 0);
    assert.equal(buckets.peek('a'), 1);
    assert.equal(buckets.take('b'), 0);
  });

  test('the number of keys stays bounded: full buckets, then the oldest, are forgotten', () => {
    let now = 0;
    const buckets = new TokenBuckets({ ratePerSecond: 1, burst: 2 }, () => now, 100);
    for (let i = 0; i < 1000; i++) buckets.take(`k${i}`);
    assert.ok(buckets.size <= 100, `size ${buckets.size}`);
    now = 5000;
    buckets.take('late');
    assert.ok(buckets.size <= 100);
  });
});

const EDGE_SECRET = 'edge-secret-rate-limit-test-0123456789';
/** What the proxy adds: the shared secret and the client's address. */
const viaEdge = (ip: string) => ({ 'X-Edge-Secret': EDGE_SECRET, 'X-Forwarded-For': ip });

describe('rate limits on a real server', () => {
  let server: TestServer;
  let clock = Date.now();
  let auth: Record<string, string>;
  let link: string;
  let zipUrl: string;

  before(async () => {
    server = await startTestServer({
      env: {
        EDGE_SECRET,
        RATE_LIMIT_DOWNLOAD_RPS: '1',
        RATE_LIMIT_DOWNLOAD_BURST: '3',
        RATE_LIMIT_LINK_RPS: '1',
        RATE_LIMIT_LINK_BURST: '5',
        RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '3',
      },
      now: () => clock,
    });
    auth = { Authorization: `Bearer ${await server.token('rae', 86400)}` };
    const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data: randomBytes(1000), metadata: { filename: 'r.bin' } }).done;
    link = (await (await fetch(`${server.url}/v1/files/signed-url?key=${encodeURIComponent(fileKey!)}&ttl=86400`, { headers: auth })).json()).url;
    zipUrl = (await (await fetch(`${server.url}/v1/files/batch-download`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ keys: [fileKey] }),
    })).json()).url;
  });
  after(() => server.stop());

  test('signed GETs: per client address, then per link across addresses; refilled with time', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await fetch(link, { headers: viaEdge('203.0.113.1') })).status, 200, `request ${i}`);
    const refused = await fetch(link, { headers: viaEdge('203.0.113.1') });
    assert.equal(refused.headers.get('retry-after'), '1');
    await expectProblem(refused, 429, 'rate_limited');
    // HEAD counts too.
    await expectProblem(await fetch(link, { method: 'HEAD', headers: viaEdge('203.0.113.1') }), 429, 'rate_limited', '', 'HEAD');

    // Other addresses share the link's own bucket (burst 5: 3 were taken above).
    assert.equal((await fetch(link, { headers: viaEdge('203.0.113.2') })).status, 200);
    assert.equal((await fetch(link, { headers: viaEdge('203.0.113.3') })).status, 200);
    const leaked = await fetch(link, { headers: viaEdge('203.0.113.4') });
    assert.ok(Number(leaked.headers.get('retry-after')) >= 1);
    await expectProblem(leaked, 429, 'rate_limited');

    clock += 2000;
    assert.equal((await fetch(link, { headers: viaEdge('203.0.113.1') })).status, 200, 'tokens come back at the rate');
    // Requests on this machine that skip the proxy are not limited (docs/operations.md "Rate limits").
    for (let i = 0; i < 10; i++) assert.equal((await fetch(link)).status, 200);
    // A client cannot pose as the proxy: a wrong secret makes X-Forwarded-For meaningless, and the
    // request is no longer a local one either — it is limited under its own address (the link's
    // bucket had one token left).
    const forged = { 'X-Edge-Secret': 'guess-guess-guess-guess-guess-guess', 'X-Forwarded-For': '203.0.113.1' };
    assert.equal((await fetch(link, { headers: forged })).status, 200);
    await expectProblem(await fetch(link, { headers: forged }), 429, 'rate_limited');
  });

  test('batch ZIP downloads are limited the same way', async () => {
    clock += 60_000;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(zipUrl, { headers: viaEdge('198.51.100.7') });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    await expectProblem(await fetch(zipUrl, { headers: viaEdge('198.51.100.7') }), 429, 'rate_limited');
  });

  test('failed authentications: after the allowance, even a good token from that address waits', async () => {
    clock += 60_000;
    const from = viaEdge('192.0.2.50');
    await expectProblem(await fetch(`${server.url}/v1/usage`, { headers: { ...from, Authorization: 'Bearer nope' } }), 401, 'invalid_token');
    await expectProblem(await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...from, 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } }), 401, 'unauthenticated');
    await expectProblem(await fetch(`${server.url}/v1/files/generate-token?user_id=x`, { method: 'POST', headers: { ...from, ...auth } }), 403, 'forbidden');
    const blocked = await fetch(`${server.url}/v1/usage`, { headers: { ...from, ...auth } });
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    await expectProblem(blocked, 429, 'rate_limited');
    // Successes cost nothing, and another address is unaffected.
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { ...viaEdge('192.0.2.51'), ...auth } })).status, 200);
    clock += 20_000;
    assert.equal((await fetch(`${server.url}/v1/usage`, { headers: { ...from, ...auth } })).status, 200, 'one failure refilled after 20 s');
  });

  test('429 counts in the metrics', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /sl_rate_limited_total\{limit="download_client"\} [1-9]/);
    assert.match(text, /sl_rate_limited_total\{limit="download_link"\} [1-9]/);
    assert.match(text, /sl_rate_limited_total\{limit="auth_failure"\} [1-9]/);
  });
});
