// The web page's sign-in in headless Chromium: a token goes only to the server it was entered for.
// A link to the page naming another server (`/?server=http://attacker`) must not hand that server
// the token stored for this one, nor the session cookie, nor become the page's server for later
// visits; it asks to sign in to that server instead. A first visit says where a token comes from
// and leaves nothing in the console.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { createUserSession } from '../../clients/sdk/node.ts';
import { buildWebPage } from '../../clients/web/build.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { launchBrowser } from './helpers/browser.ts';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  cookie: string | undefined;
}

interface Attacker {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

interface Stage {
  server: TestServer;
  /** Started only for the suites that ask for it. */
  attacker: Attacker;
  browser: BrowserContext;
}

/**
 * The page's own server, a fresh browser profile and (if asked) the attacker, started before the
 * suite's tests and stopped after them: each suite starts from a browser that remembers nothing.
 */
function stage(options: { attacker: boolean }): Stage {
  const started = {} as Stage;
  before(async () => {
    await buildWebPage();
    started.server = await startTestServer();
    if (options.attacker) started.attacker = await startAttacker();
    started.browser = await launchBrowser();
  });
  after(async () => {
    await started.browser?.close();
    await started.attacker?.close();
    await started.server?.stop();
  });
  return started;
}

/**
 * A server that wants tokens: it allows any origin with credentials and answers every API call as
 * the real one would, so a page that trusted it would go on sending what it holds. It accepts tus
 * uploads and holds their PATCH open, so a page keeps an unfinished upload of it to resume later.
 */
async function startAttacker(): Promise<Attacker> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, cookie: req.headers.cookie });
    res.setHeader('Access-Control-Allow-Origin', req.headers.origin ?? '*');
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? '*');
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE, HEAD');
    res.setHeader('Access-Control-Expose-Headers', 'Location, Tus-Resumable, Upload-Offset, Upload-Length');
    res.setHeader('Tus-Resumable', '1.0.0');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    if (req.url === '/v1/uploads' && req.method === 'POST') {
      return void res.writeHead(201, { Location: `http://${req.headers.host}/v1/uploads/planted` }).end();
    }
    if (req.url === '/v1/uploads/planted') {
      if (req.method === 'PATCH') return; // never answered: the upload stays unfinished
      return void res.writeHead(200, { 'Upload-Offset': '0', 'Upload-Length': '100000', 'Cache-Control': 'no-store' }).end();
    }
    res.setHeader('Content-Type', 'application/json');
    if (req.url!.startsWith('/v1/usage')) return void res.end(JSON.stringify({ used_bytes: 0, reserved_bytes: 0, quota_bytes: 1e9 }));
    res.end(JSON.stringify({ files: [], next_cursor: null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
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
  const env = stage({ attacker: true });
  let aliceToken: string;

  test('?server= naming another server gets no token and no cookie, now or on a later visit', async () => {
    const page = await env.browser.newPage();
    await page.goto(env.server.url);
    aliceToken = await env.server.token('alice');
    await signIn(page, aliceToken);
    await page.getByText('Signed in as alice').waitFor();
    // The session cookie as a single sign-on in front of the server would set it. Cookies are per
    // host, not per port: this one is also the attacker's (127.0.0.1) to receive if a request asks.
    await env.browser.addCookies([{ name: 'sl_token', value: aliceToken, domain: '127.0.0.1', path: '/' }]);

    await page.goto(`${env.server.url}/?server=${encodeURIComponent(env.attacker.url)}`);
    assert.equal(await settled(page), 'sign-in', 'the page asks to sign in to the other server');
    await page.locator('#sign-in-server').getByText(env.attacker.url).waitFor();
    assert.equal(await page.locator('#server-input').inputValue(), env.attacker.url);
    await page.waitForLoadState('networkidle');

    await page.goto(env.server.url);
    assert.equal(await settled(page), 'workspace');
    await page.getByText('Signed in as alice').waitFor();
    await page.locator('#empty').getByText('No files yet').waitFor();
    await page.waitForLoadState('networkidle');

    const leaked = env.attacker.seen.filter((r) => r.authorization !== undefined || r.cookie !== undefined);
    assert.deepEqual(leaked, [], 'the other server received a token or a cookie');
    assert.deepEqual(env.attacker.seen, [], 'the page sent nothing to a server nobody signed in to');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    assert.ok(!stored.includes(env.attacker.url) && !stored.includes(new URL(env.attacker.url).host), `remembered: ${stored}`);
    await page.close();
  });

  test('signing in to the other server keeps both tokens apart, each sent only to its own server', async () => {
    const page = await env.browser.newPage();
    await page.goto(`${env.server.url}/?server=${encodeURIComponent(env.attacker.url)}`);
    assert.equal(await settled(page), 'sign-in');
    await signIn(page, 'a-token-made-for-the-other-server');
    await page.locator('#workspace').waitFor();
    await page.waitForLoadState('networkidle');
    const authorizations = new Set(env.attacker.seen.map((r) => r.authorization).filter((a) => a !== undefined));
    assert.deepEqual([...authorizations], ['Bearer a-token-made-for-the-other-server']);
    assert.ok(env.attacker.seen.every((r) => r.cookie === undefined), 'no cookie goes to another origin');

    // The page's own server still gets its own token, and only that.
    const own: string[] = [];
    page.on('request', (req) => {
      if (req.url().startsWith(env.server.url)) own.push(req.headers().authorization ?? '');
    });
    await page.goto(`${env.server.url}/?server=${encodeURIComponent(env.server.url)}`);
    await page.getByText('Signed in as alice').waitFor();
    await page.waitForLoadState('networkidle');
    assert.ok(own.includes(`Bearer ${aliceToken}`), own.join('\n'));
    assert.ok(own.every((a) => a === '' || a === `Bearer ${aliceToken}`), own.join('\n'));
    await page.close();
  });
});

/** In the page: whether Golden Retriever's stored queue (IndexedDB) mentions `text`. */
function storedQueueNames(text: string): Promise<boolean> {
  return new Promise((resolve) => {
    const open = indexedDB.open('uppy-blobs');
    open.onerror = () => resolve(false);
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains('metadata')) {
        db.close();
        return resolve(false);
      }
      const all = db.transaction('metadata').objectStore('metadata').getAll();
      all.onerror = () => resolve(false);
      all.onsuccess = () => {
        db.close();
        resolve(all.result.some((record: { metadata?: unknown }) => String(record.metadata).includes(text)));
      };
    };
  });
}

describe('web page: an unfinished upload stays with its server', () => {
  const env = stage({ attacker: true });

  test('an upload left unfinished on the other server is not restored, nor resumed, on the own server\'s page', async () => {
    const own = await env.browser.newPage();
    await own.goto(env.server.url);
    const token = await env.server.token('alice');
    await signIn(own, token);
    await own.getByText('Signed in as alice').waitFor();
    await own.close();

    // Signed in to the other server with a token naming the same user, an upload is left unfinished there.
    const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const elsewhere = await env.browser.newPage();
    await elsewhere.goto(`${env.server.url}/?server=${encodeURIComponent(env.attacker.url)}`);
    await signIn(elsewhere, `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'alice' })}.c2ln`);
    await elsewhere.getByText('Signed in as alice').waitFor();
    const dir = tempDir('sl-web-');
    writeFileSync(path.join(dir, 'left-behind.bin'), randomBytes(100_000));
    await elsewhere.locator('#dashboard input[type=file]').first().setInputFiles(path.join(dir, 'left-behind.bin'));
    await elsewhere.locator('.uppy-StatusBar-actionBtn--upload').click();
    // Golden Retriever has stored that queue, with the other server's upload URL.
    await elsewhere.waitForFunction(storedQueueNames, '/v1/uploads/planted', { polling: 100 });
    await elsewhere.close();

    // Back on the own server, a file of its own is uploaded: only that one arrives there.
    const back = await env.browser.newPage();
    await back.goto(`${env.server.url}/?server=${encodeURIComponent(env.server.url)}`);
    await back.getByText('Signed in as alice').waitFor();
    writeFileSync(path.join(dir, 'own.txt'), 'mine\n');
    await back.locator('#dashboard input[type=file]').first().setInputFiles(path.join(dir, 'own.txt'));
    await back.locator('.uppy-StatusBar-actionBtn--upload').click();
    await back.locator('#file-rows tr', { hasText: 'own.txt' }).waitFor({ timeout: 30_000 });
    const { files } = await createUserSession({ baseUrl: env.server.url, token }).listMyFiles();
    assert.deepEqual(files.map((f) => f.filename), ['own.txt'], 'the other server\'s queue was restored here');
    assert.deepEqual(env.attacker.seen.filter((r) => r.authorization === `Bearer ${token}`), [], 'the own token went to the other server');
    await back.close();
  });
});

describe('web page: first visit', () => {
  const env = stage({ attacker: false });

  test('says where a token comes from, with no error in the console', async () => {
    const page = await env.browser.newPage();
    const problems: string[] = [];
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()} ${res.url()}`);
    });
    await page.goto(env.server.url);
    assert.equal(await settled(page), 'sign-in');
    await page.waitForLoadState('networkidle');
    assert.deepEqual(problems, []);
    const help = await page.locator('#sign-in').innerText();
    assert.match(help, /npm run token -- <user>/);
    assert.match(help, /generate-token/);
    await page.close();
  });

  test('the session cookie still signs in on the server\'s own page', async () => {
    await env.browser.addCookies([{ name: 'sl_token', value: await env.server.token('carol'), domain: '127.0.0.1', path: '/' }]);
    const page = await env.browser.newPage();
    await page.goto(env.server.url);
    assert.equal(await settled(page), 'workspace');
    await page.locator('#empty').getByText('No files yet').waitFor();
    await page.close();
  });
});
