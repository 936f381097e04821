// CORS_ORIGINS=* lets any page use the API with a token the page holds (Bearer), never with the
// user's cookie: `Access-Control-Allow-Origin: *` without `Access-Control-Allow-Credentials`.
// In Chromium, a page on another origin cannot list or delete a signed-in user's files through
// the cookie; a page whose origin is listed explicitly can.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { launchBrowser } from '../../clients/helpers/browser.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { tusUpload } from '../../helpers/tus.ts';

/** A page on its own origin (another port of 127.0.0.1: same site, so the cookie goes along). */
async function startPageServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('<!doctype html><title>elsewhere</title><p>a page elsewhere</p>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

type Outcome = { status: number; body: string } | { error: string };

describe('CORS and credentials', () => {
  let browser: BrowserContext;
  let page: { origin: string; close(): Promise<void> };
  before(async () => {
    browser = await launchBrowser();
    page = await startPageServer();
  });
  after(async () => {
    await browser?.close();
    await page?.close();
  });

  /** A signed-in user (cookie for the API's host) with one file; then `script` runs on the page. */
  async function scenario(server: TestServer, user: string): Promise<{ key: string; token: string; run: (what: 'list' | 'delete' | 'bearer-list') => Promise<Outcome> }> {
    const token = await server.token(user);
    const { fileKey } = await tusUpload({ endpoint: server.url, headers: { Authorization: `Bearer ${token}` }, data: randomBytes(64), metadata: { filename: 'secret.txt' } }).done;
    await browser.clearCookies();
    await browser.addCookies([{ name: 'sl_token', value: token, url: server.url, httpOnly: true, sameSite: 'Lax' }]);
    const tab = await browser.newPage();
    await tab.goto(page.origin);
    const run = (what: 'list' | 'delete' | 'bearer-list') =>
      tab.evaluate(async ({ api, key, token, what }) => {
        try {
          const res = what === 'list'
            ? await fetch(`${api}/v1/files/all`, { credentials: 'include' })
            : what === 'delete'
              ? await fetch(`${api}/v1/files/${encodeURIComponent(key)}`, { method: 'DELETE', credentials: 'include' })
              : await fetch(`${api}/v1/files/all`, { headers: { Authorization: `Bearer ${token}` } });
          return { status: res.status, body: await res.text() };
        } catch (error) {
          return { error: String(error) };
        }
      }, { api: server.url, key: fileKey!, token, what });
    return { key: fileKey!, token, run };
  }

  test('CORS_ORIGINS=*: answers * without credentials; a page elsewhere cannot list or delete with the cookie, but can with a Bearer token', async () => {
    const server = await startTestServer({ env: { CORS_ORIGINS: '*' } });
    try {
      const simple = await fetch(`${server.url}/healthz`, { headers: { Origin: 'https://anywhere.example' } });
      assert.equal(simple.headers.get('access-control-allow-origin'), '*');
      assert.equal(simple.headers.get('access-control-allow-credentials'), null);
      const preflight = await fetch(`${server.url}/v1/files/x`, { method: 'OPTIONS', headers: { Origin: 'https://anywhere.example', 'Access-Control-Request-Method': 'DELETE' } });
      assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
      assert.equal(preflight.headers.get('access-control-allow-credentials'), null);

      const { key, run } = await scenario(server, 'nina');
      const listed = await run('list');
      assert.ok('error' in listed, `the page read the user's list: ${JSON.stringify(listed)}`);
      const deleted = await run('delete');
      assert.ok('error' in deleted, `the page deleted with the cookie: ${JSON.stringify(deleted)}`);
      const withToken = await run('bearer-list');
      assert.ok('status' in withToken && withToken.status === 200, JSON.stringify(withToken));
      assert.ok(withToken.body.includes(key), 'a Bearer-token client on another origin still works');
      const still = await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: { 'X-Service-Token': server.serviceToken } });
      assert.equal(still.status, 200, 'the file is still there');
    } finally {
      await server.stop();
    }
  });

  test('an origin listed explicitly gets credentials, beside * for the rest', async () => {
    const server = await startTestServer({ env: { CORS_ORIGINS: `*,${page.origin}` } });
    try {
      const listedOrigin = await fetch(`${server.url}/healthz`, { headers: { Origin: page.origin } });
      assert.equal(listedOrigin.headers.get('access-control-allow-origin'), page.origin);
      assert.equal(listedOrigin.headers.get('access-control-allow-credentials'), 'true');
      const other = await fetch(`${server.url}/healthz`, { headers: { Origin: 'https://anywhere.example' } });
      assert.equal(other.headers.get('access-control-allow-origin'), '*');
      assert.equal(other.headers.get('access-control-allow-credentials'), null);
      assert.match(other.headers.get('vary') ?? '', /origin/i);

      const { key, run } = await scenario(server, 'omar');
      const listed = await run('list');
      assert.ok('status' in listed && listed.status === 200 && listed.body.includes(key), JSON.stringify(listed));
      const deleted = await run('delete');
      assert.ok('status' in deleted && deleted.status === 200, JSON.stringify(deleted));
    } finally {
      await server.stop();
    }
  });
});
