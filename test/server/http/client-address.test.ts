// What the server trusts about where a request comes from is configuration (EDGE_SECRET,
// TRUSTED_PROXIES), never a guess: a request relayed by a proxy is never "local" (which may read
// /metrics without a token and is not rate limited), whatever headers that proxy sets or omits.
// The resolver itself table-driven, then a real server behind a real proxy on loopback.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../server/config.ts';
import { createClientResolver, type ClientAddress } from '../../../server/http/client-address.ts';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { startRecordingProxy, type RecordingProxy } from '../../helpers/recording-proxy.ts';

const EDGE_SECRET = 'edge-secret-trusted-proxies-0123456789';
const METRICS_TOKEN = 'metrics-token-trusted-proxies';

describe('who sent a request (createClientResolver)', () => {
  type Case = [name: string, config: { trustedProxies?: string[]; edgeSecret?: string }, peer: string, headers: Record<string, string>, expected: Partial<ClientAddress>];
  const cases: Case[] = [
    ['a loopback peer with no sign of a proxy is local', {}, '127.0.0.1', {}, { local: true, viaProxy: false, clientIp: '127.0.0.1' }],
    ['an IPv4-mapped loopback peer too', {}, '::ffff:127.0.0.1', {}, { local: true, clientIp: '127.0.0.1' }],
    ['IPv6 loopback too', {}, '::1', {}, { local: true }],
    ['a proxy that sets only X-Real-IP is not local, and not believed', {}, '127.0.0.1', { 'X-Real-IP': '203.0.113.7' }, { local: false, viaProxy: false, clientIp: '127.0.0.1' }],
    ['nor one that sets X-Forwarded-For', {}, '127.0.0.1', { 'X-Forwarded-For': '203.0.113.7' }, { local: false, clientIp: '127.0.0.1' }],
    ['nor one that sets Via or Forwarded', {}, '127.0.0.1', { Via: '1.1 nginx', Forwarded: 'for=203.0.113.7' }, { local: false }],
    ['a network peer is not local', {}, '203.0.113.7', {}, { local: false, clientIp: '203.0.113.7' }],
    ['EDGE_SECRET: the proxy is believed', { edgeSecret: EDGE_SECRET }, '127.0.0.1', { 'X-Edge-Secret': EDGE_SECRET, 'X-Forwarded-For': '198.51.100.1' }, { fromEdge: true, viaProxy: true, local: false, clientIp: '198.51.100.1' }],
    ['a wrong secret is neither believed nor local', { edgeSecret: EDGE_SECRET }, '127.0.0.1', { 'X-Edge-Secret': 'wrong', 'X-Forwarded-For': '198.51.100.1' }, { fromEdge: false, viaProxy: false, local: false, clientIp: '127.0.0.1' }],
    ['a trusted proxy on loopback is never local, even without headers', { trustedProxies: ['127.0.0.1'] }, '127.0.0.1', {}, { viaProxy: true, local: false, clientIp: '127.0.0.1' }],
    ['through a chain of trusted proxies, the first untrusted entry from the right is the client', { trustedProxies: ['127.0.0.1', '10.0.0.0/8'] }, '127.0.0.1', { 'X-Forwarded-For': '6.6.6.6, 203.0.113.9, 10.1.2.3' }, { viaProxy: true, clientIp: '203.0.113.9' }],
    ['an untrusted peer\'s X-Forwarded-For is ignored', { trustedProxies: ['10.0.0.0/8'] }, '192.0.2.1', { 'X-Forwarded-For': '203.0.113.9' }, { viaProxy: false, local: false, clientIp: '192.0.2.1' }],
    ['IPv6 CIDRs', { trustedProxies: ['fd00::/8'] }, 'fd00::1', { 'X-Forwarded-For': '2001:db8::1' }, { viaProxy: true, clientIp: '2001:db8::1' }],
    ['garbage in X-Forwarded-For leaves the proxy\'s own address', { trustedProxies: ['10.0.0.0/8'] }, '10.0.0.2', { 'X-Forwarded-For': 'unknown' }, { viaProxy: true, clientIp: '10.0.0.2' }],
  ];
  for (const [name, config, peer, headers, expected] of cases) {
    test(name, () => {
      const resolve = createClientResolver({ trustedProxies: config.trustedProxies ?? [], edgeSecret: config.edgeSecret });
      const actual = resolve(peer, new Headers(headers));
      for (const [key, value] of Object.entries(expected)) assert.equal(actual[key as keyof ClientAddress], value, key);
    });
  }

  test('TRUSTED_PROXIES takes addresses and CIDRs, and names itself when wrong', () => {
    assert.deepEqual(loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8, ::1, fd00::/8, 192.0.2.1' }).trustedProxies, ['10.0.0.0/8', '::1', 'fd00::/8', '192.0.2.1']);
    assert.deepEqual(loadConfig({}).trustedProxies, []);
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.1/8/8', '::1/129']) {
      assert.throws(() => loadConfig({ TRUSTED_PROXIES: bad }), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('TRUSTED_PROXIES:')), bad);
    }
  });
});

describe('behind a proxy that sets only X-Real-IP, nothing configured', () => {
  let server: TestServer;
  let proxy: RecordingProxy;
  before(async () => {
    server = await startTestServer({ env: { RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '2' } });
    proxy = await startRecordingProxy({ target: server.url, addHeaders: () => ({ 'X-Real-IP': '203.0.113.7' }) });
  });
  after(async () => {
    await proxy.close();
    await server.stop();
  });

  test('/metrics is not public through it; directly from this machine it is readable', async () => {
    await expectProblem(await fetch(`${proxy.url}/metrics`), 403, 'forbidden');
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
  });

  test('rate limits apply through it (to the proxy\'s address: it names no client we can believe)', async () => {
    const bad = { Authorization: 'Bearer not-a-token' };
    await expectProblem(await fetch(`${proxy.url}/v1/usage`, { headers: bad }), 401, 'invalid_token');
    await expectProblem(await fetch(`${proxy.url}/v1/usage`, { headers: bad }), 401, 'invalid_token');
    await expectProblem(await fetch(`${proxy.url}/v1/usage`, { headers: bad }), 429, 'rate_limited');
    // A local tool talking to the server directly is still not limited.
    for (let i = 0; i < 3; i++) await expectProblem(await fetch(`${server.url}/v1/usage`, { headers: bad }), 401, 'invalid_token');
  });
});

describe('TRUSTED_PROXIES: a proxy on loopback that appends X-Forwarded-For', () => {
  let server: TestServer;
  let proxy: RecordingProxy;
  before(async () => {
    server = await startTestServer({ env: { TRUSTED_PROXIES: '127.0.0.1', RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '2', METRICS_TOKEN } });
    // As nginx's `$proxy_add_x_forwarded_for`: whatever the client sent, then the client's address
    // (here chosen by the test through X-Test-Client, standing for the TCP peer the proxy sees).
    proxy = await startRecordingProxy({
      target: server.url,
      addHeaders: (req) => ({ 'X-Forwarded-For': [req.headers['x-forwarded-for'], String(req.headers['x-test-client'])].filter(Boolean).join(', ') }),
    });
  });
  after(async () => {
    await proxy.close();
    await server.stop();
  });

  test('each client is limited by its own address; what a client writes into X-Forwarded-For changes nothing', async () => {
    const bad = { Authorization: 'Bearer not-a-token' };
    const good = { Authorization: `Bearer ${await server.token('tess')}` };
    for (let i = 0; i < 2; i++) await expectProblem(await fetch(`${proxy.url}/v1/usage`, { headers: { ...bad, 'X-Test-Client': '198.51.100.1' } }), 401, 'invalid_token');
    await expectProblem(await fetch(`${proxy.url}/v1/usage`, { headers: { ...good, 'X-Test-Client': '198.51.100.1' } }), 429, 'rate_limited');
    await expectProblem(await fetch(`${proxy.url}/v1/usage`, { headers: { ...good, 'X-Test-Client': '198.51.100.1', 'X-Forwarded-For': '192.0.2.99' } }), 429, 'rate_limited');
    assert.equal((await fetch(`${proxy.url}/v1/usage`, { headers: { ...good, 'X-Test-Client': '198.51.100.2' } })).status, 200);
  });

  test('a trusted proxy\'s address is never local: /metrics only with the token, through it or not', async () => {
    await expectProblem(await fetch(`${proxy.url}/metrics`, { headers: { 'X-Test-Client': '198.51.100.3' } }), 403, 'forbidden');
    await expectProblem(await fetch(`${server.url}/metrics`), 403, 'forbidden');
    assert.equal((await fetch(`${proxy.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}`, 'X-Test-Client': '198.51.100.3' } })).status, 200);
  });
});
