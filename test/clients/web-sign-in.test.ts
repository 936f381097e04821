// The web page's sign-in in headless Chromium: a token goes only to the server it was entered for.
// A link to the page naming another server (`/?server=http://attacker`) must not hand that server
// the token stored for this one, nor the session cookie, nor become the page's server for later
// visits; it asks to sign in to that server instead. A first visit says where a token comes from
// and leaves nothing in the console.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { buildWebPage } from '../../clients/web/build.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { launchBrowser } from './helpers/browser.ts';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  cookie: string | undefined;
}

/**
 * A server that wants tokens: it allows any origin with credentials and answers every API call as
 * the real one would, so a page that trusted it would go on sending what it holds.
 */
async function startAttacker(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, cookie: req.headers.cookie });
    res.setHeader('Access-Control-Allow-Origin', req.headers.origin ?? '*');
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? '*');
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE, HEAD');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    res.setHeader('Content-Type', 'application/json');
    if (req.url!.startsWith('/v1/usage')) return void res.end(JSON.stringify({ used_bytes: 0, reserved_bytes: 0, quota_bytes: 1e9 }));
    res.end(JSON.stringify({ files: [], next_cursor: null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.locator('#token-input').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until the page has decided: the sign-in form or the workspace. */
async function settled(page: Page): Promise<'sign-in' | 'workspace'> {
  await page.locator('#sign-in:visible, #workspace:visible').first().waitFor();
  return (await page.locator('#sign-in').isVisible()) ? 'sign-in' : 'workspace';
}

describe('web page: tokens stay with their server', () => {
  let server: TestServer;
  let attacker: Awaited<ReturnType<typeof startAttacker>>;
  let browser: BrowserContext;
  let aliceToken: string;
  before(async () => {
    await buildWebPage();
    server = await startTestServer();
    attacker = await startAttacker();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await attacker?.close();
    await server?.stop();
  });

  test('?server= naming another server gets no token and no cookie, now or on a later visit', async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    aliceToken = await server.token('alice');
    await signIn(page, aliceToken);
    await page.getByText('Signed in as alice').waitFor();
    // The session cookie as a single sign-on in front of the server would set it. Cookies are per
    // host, not per port: this one is also the attacker's (127.0.0.1) to receive if a request asks.
    await browser.addCookies([{ name: 'sl_token', value: aliceToken, domain: '127.0.0.1', path: '/' }]);

    await page.goto(`${server.url}/?server=${encodeURIComponent(attacker.url)}`);
    assert.equal(await settled(page), 'sign-in', 'the page asks to sign in to the other server');
    await page.locator('#sign-in-server').getByText(attacker.url).waitFor();
    assert.equal(await page.locator('#server-input').inputValue(), attacker.url);
    await page.waitForLoadState('networkidle');

    await page.goto(server.url);
    assert.equal(await settled(page), 'workspace');
    await page.getByText('Signed in as alice').waitFor();
    await page.locator('#empty').getByText('No files yet').waitFor();
    await page.waitForLoadState('networkidle');

    const leaked = attacker.seen.filter((r) => r.authorization !== undefined || r.cookie !== undefined);
    assert.deepEqual(leaked, [], 'the other server received a token or a cookie');
    assert.deepEqual(attacker.seen, [], 'the page sent nothing to a server nobody signed in to');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    assert.ok(!stored.includes(attacker.url) && !stored.includes(new URL(attacker.url).host), `remembered: ${stored}`);
    await page.close();
  });

  test('signing in to the other server keeps both tokens apart, each sent only to its own server', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/?server=${encodeURIComponent(attacker.url)}`);
    assert.equal(await settled(page), 'sign-in');
    await signIn(page, 'a-token-made-for-the-other-server');
    await page.locator('#workspace').waitFor();
    await page.waitForLoadState('networkidle');
    const authorizations = new Set(attacker.seen.map((r) => r.authorization).filter((a) => a !== undefined));
    assert.deepEqual([...authorizations], ['Bearer a-token-made-for-the-other-server']);
    assert.ok(attacker.seen.every((r) => r.cookie === undefined), 'no cookie goes to another origin');

    // The page's own server still gets its own token, and only that.
    const own: string[] = [];
    page.on('request', (req) => {
      if (req.url().startsWith(server.url)) own.push(req.headers().authorization ?? '');
    });
    await page.goto(`${server.url}/?server=${encodeURIComponent(server.url)}`);
    await page.getByText('Signed in as alice').waitFor();
    await page.waitForLoadState('networkidle');
    assert.ok(own.includes(`Bearer ${aliceToken}`), own.join('\n'));
    assert.ok(own.every((a) => a === '' || a === `Bearer ${aliceToken}`), own.join('\n'));
    await page.close();
  });
});

describe('web page: first visit', () => {
  let server: TestServer;
  let browser: BrowserContext;
  before(async () => {
    await buildWebPage();
    server = await startTestServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('says where a token comes from, with no error in the console', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()} ${res.url()}`);
    });
    await page.goto(server.url);
    assert.equal(await settled(page), 'sign-in');
    await page.waitForLoadState('networkidle');
    assert.deepEqual(problems, []);
    const help = await page.locator('#sign-in').innerText();
    assert.match(help, /npm run token -- <user>/);
    assert.match(help, /generate-token/);
    await page.close();
  });

  test('the session cookie still signs in on the server\'s own page', async () => {
    await browser.addCookies([{ name: 'sl_token', value: await server.token('carol'), domain: '127.0.0.1', path: '/' }]);
    const page = await browser.newPage();
    await page.goto(server.url);
    assert.equal(await settled(page), 'workspace');
    await page.locator('#empty').getByText('No files yet').waitFor();
    await page.close();
  });
});
