// Several instances behind the repository's Caddyfile (docs/several-instances.md): SL_UPSTREAM
// naming two upstreams, Caddy sends consecutive requests of one client to each in turn (no sticky
// sessions), and an instance that refuses connections is passed over.
// The upstreams are plain HTTP servers that say who answered: what is tested is Caddy's part.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';
import { freePort, httpsRequest, startCaddy, type CaddyProcess } from './caddy-process.ts';

/** `healthy`: whether /healthz/live answers 200 (otherwise 503); always, unless given. */
function upstream(name: string, healthy: () => boolean = () => true): http.Server {
  return http.createServer((req, res) => {
    if (req.url === '/healthz/live' && !healthy()) return void res.writeHead(503).end();
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Set-Cookie', `instance=${name}`); // what a sticky proxy would key on
      res.end(JSON.stringify({ name, method: req.method, bytes }));
    });
  });
}

describe('Caddyfile with two upstreams', () => {
  const dataDir = tempDir();
  const servers = { one: upstream('one'), two: upstream('two') };
  let caddy: CaddyProcess;

  before(async () => {
    for (const server of Object.values(servers)) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    const address = (server: http.Server) => `127.0.0.1:${(server.address() as AddressInfo).port}`;
    caddy = await startCaddy({
      httpsPort: await freePort(),
      upstream: `${address(servers.one)} ${address(servers.two)}`,
      dataDir,
      edgeSecret: 'edge-secret-round-robin-0123456789abcdef',
    });
  });
  after(async () => {
    await caddy?.stop();
    for (const server of Object.values(servers)) server.closeAllConnections(), server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('consecutive requests of one client alternate between the instances, cookie or not', async () => {
    const answered: string[] = [];
    let cookie = '';
    for (let i = 0; i < 8; i++) {
      const res = await httpsRequest(`${caddy.origin}/v1/uploads/some-upload`, caddy.ca, { method: 'HEAD', headers: cookie ? { Cookie: cookie } : {} });
      assert.equal(res.status, 200);
      cookie = String(res.headers['set-cookie']).split(';')[0]!;
      answered.push(cookie.split('=')[1]!);
    }
    assert.deepEqual(new Set(answered), new Set(['one', 'two']));
    for (let i = 1; i < answered.length; i++) assert.notEqual(answered[i], answered[i - 1], `request ${i} went to the other instance`);
  });

  test('an instance that refuses connections is passed over: a GET never sees it, a request with a body at most once', async () => {
    // Nothing listens on `gone` (a stopped or crashed instance). Caddy 2.6 resends a request
    // whose dial failed to the other instance, but not its body, which the failed attempt
    // closed: such a request answers 502 (a tus client resumes). Caddy's health check (at its
    // start, then every 2 s) passes `gone` over.
    const gone = await freePort();
    const alone = await startCaddy({
      httpsPort: await freePort(),
      upstream: `127.0.0.1:${gone} 127.0.0.1:${(servers.two.address() as AddressInfo).port}`,
      dataDir,
      edgeSecret: 'edge-secret-round-robin-0123456789abcdef',
    });
    try {
      for (let i = 0; i < 4; i++) {
        const res = await httpsRequest(`${alone.origin}/v1/uploads/some-upload`, alone.ca, { method: 'GET' });
        assert.equal(res.status, 200);
        assert.equal(JSON.parse(res.body.toString()).name, 'two');
      }
      const body = 'x'.repeat(64 * 1024);
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await httpsRequest(`${alone.origin}/v1/uploads/some-upload`, alone.ca, { method: 'PATCH', body });
        statuses.push(res.status);
        if (res.status === 200) assert.deepEqual(JSON.parse(res.body.toString()), { name: 'two', method: 'PATCH', bytes: body.length });
      }
      assert.ok(statuses.filter((s) => s !== 200).length <= 1, `statuses: ${statuses.join(', ')}`);
    } finally {
      await alone.stop();
    }
  });
});

describe('Caddyfile with one upstream that restarts', () => {
  test('the instance is back in rotation at the first health check that finds it up; a resuming HEAD waits for it', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    let checks = 0;
    let healthyFrom = 0; // the first health check (by count) answered 200
    const start = async () => {
      const server = upstream('lone', () => checks >= healthyFrom);
      server.prependListener('request', (req: http.IncomingMessage) => {
        if (req.url === '/healthz/live') checks++;
      });
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      return server;
    };
    let server = await start();
    const caddy = await startCaddy({ httpsPort: await freePort(), upstream: `127.0.0.1:${port}`, dataDir, edgeSecret: 'edge-secret-round-robin-0123456789abcdef' });
    try {
      assert.equal((await httpsRequest(`${caddy.origin}/v1/files/all`, caddy.ca)).status, 200);
      // A restart: requests while it is down fail (Caddy's own 502 or 503)...
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      assert.ok([502, 503].includes((await httpsRequest(`${caddy.origin}/v1/files/all`, caddy.ca)).status));
      // ...and once it is up again, Caddy's next check of it puts it back: no passive hold-off
      // keeps answering 503 after that.
      checks = 0;
      server = await start();
      await until("Caddy's health check reaches the restarted instance", () => checks > 0);
      // Caddy records the check's answer just after sending it here: asked again until it has.
      const res = await until('a request served again', async () => {
        const answer = await httpsRequest(`${caddy.origin}/v1/files/all`, caddy.ca);
        return answer.status === 200 ? answer : undefined;
      });
      assert.equal(JSON.parse(res.body.toString()).name, 'lone');

      // A client resuming an upload while no instance is up: its HEAD waits for one instead of
      // failing (tus-js-client would start the upload over). The instance reports itself down
      // until the second health check after the HEAD was sent, 2 s or more later: past what
      // Caddy's retries of other requests wait (lb_retries 2, 250 ms apart).
      healthyFrom = Infinity;
      await until('Caddy takes the instance out', async () => (await httpsRequest(`${caddy.origin}/v1/files/all`, caddy.ca)).status === 503);
      const probe = httpsRequest(`${caddy.origin}/v1/uploads/some-upload`, caddy.ca, { method: 'HEAD' });
      healthyFrom = checks + 2;
      assert.equal((await probe).status, 200, 'the HEAD waited for the instance');
      assert.ok(checks >= healthyFrom, 'and was answered once the instance was back');
    } finally {
      await caddy.stop();
      server.closeAllConnections();
      server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
