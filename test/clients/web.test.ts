// The web page (clients/web) in headless Chromium against a real server: sign in, upload two
// files through Uppy's Dashboard with their SHA-256 declared, see them listed with the right
// sizes, copy a link and fetch it, download a ZIP, delete; errors in words; the page served by
// one origin talking to the API on another (CORS). Leaves test-artifacts/web.png to look at.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, FileChooser, Page } from 'playwright-core';
import { buildWebPage } from '../../clients/web/build.ts';
import { ROOT, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { readWithYauzl } from '../helpers/zip.ts';
import { launchBrowser } from './helpers/browser.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');

/** The sha256 each upload declared, read from the creation requests' Upload-Metadata. */
function declaredHashes(page: Page): Map<string, string> {
  const declared = new Map<string, string>();
  page.on('request', (req) => {
    const header = req.method() === 'POST' && req.url().endsWith('/v1/uploads') ? req.headers()['upload-metadata'] : undefined;
    if (!header) return;
    const meta = Object.fromEntries(header.split(',').map((pair) => {
      const [k, v = ''] = pair.trim().split(' ');
      return [k, Buffer.from(v, 'base64').toString('utf8')];
    }));
    declared.set(meta.filename!, meta.sha256!);
  });
  return declared;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.locator('#token-input').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Picks the files as a person would (the Dashboard's "browse files" / "Add more"), then Upload. */
async function uploadThroughDashboard(page: Page, files: string[]): Promise<void> {
  const done = page.locator('.uppy-StatusBar-actionBtn--done');
  const browse = page.locator('#dashboard .uppy-Dashboard-browse').first();
  // The Dashboard shows its picker (nothing picked yet) or, once the last uploads have all ended,
  // their "Done": waiting for one of the two, not looking once, since on a busy machine the list
  // can show the new files before the status bar has finished.
  await done.or(browse).first().waitFor();
  if (await done.isVisible()) await done.click();
  // "Done" clears the finished uploads and the Dashboard renders its file picker again, in its own
  // time; a click that lands while it is being replaced opens nothing, so it is made again.
  await browse.waitFor();
  let chooser: FileChooser | undefined;
  for (let attempt = 1; !chooser; attempt++) {
    try {
      [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 10_000 }), browse.click()]);
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
  await chooser.setFiles(files);
  await page.locator('.uppy-StatusBar-actionBtn--upload').click();
}

describe('web page', () => {
  let server: TestServer;
  let browser: BrowserContext;
  let dir: string;
  before(async () => {
    await buildWebPage();
    server = await startTestServer({ env: { QUOTA_DEFAULT_BYTES: '3000000' } });
    browser = await launchBrowser();
    dir = tempDir('sl-web-');
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the page and its assets are served with types and caching', async () => {
    const html = await fetch(`${server.url}/`);
    assert.equal(html.status, 200);
    assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(html.headers.get('cache-control'), 'no-cache');
    assert.match(html.headers.get('content-security-policy')!, /script-src 'self'/);
    const body = await html.text();
    const js = /src="(\/assets\/app-\w+\.js)"/.exec(body)![1]!;
    const css = /href="(\/assets\/app-\w+\.css)"/.exec(body)![1]!;
    for (const [asset, type] of [[js, 'text/javascript'], [css, 'text/css']] as const) {
      const res = await fetch(server.url + asset);
      assert.equal(res.status, 200, asset);
      assert.equal(res.headers.get('content-type'), `${type}; charset=utf-8`);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.ok((await res.arrayBuffer()).byteLength > 1000);
    }
    assert.equal((await fetch(`${server.url}/assets/app-NOPE.js`)).status, 404);
    assert.equal((await fetch(`${server.url}/assets/..%2Fpackage.json`)).status, 404);
    assert.doesNotMatch(body, /https?:\/\//, 'nothing loaded from a CDN');
  });

  test('sign in, upload two files, list, copy a link, download a ZIP, delete', async () => {
    const page = await browser.newPage();
    await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page.on('dialog', (dialog) => void dialog.accept());
    const declared = declaredHashes(page);
    await page.goto(server.url);

    // A wrong token is refused in words.
    await signIn(page, 'not-a-token');
    await page.locator('#banner').getByText('The token was not accepted').waitFor();
    await signIn(page, await server.token('alice'));
    await page.locator('#workspace').waitFor();
    await page.getByText('Signed in as alice').waitFor();
    await page.locator('#empty').getByText('No files yet').waitFor();

    const photo = randomBytes(150_000);
    const report = randomBytes(2_500_000);
    writeFileSync(path.join(dir, 'photo.jpg'), photo);
    writeFileSync(path.join(dir, 'quarterly report.pdf'), report);
    await page.locator('#folder-input').fill('main/pictures');
    await uploadThroughDashboard(page, [path.join(dir, 'photo.jpg'), path.join(dir, 'quarterly report.pdf')]);
    await page.locator('#file-rows tr').nth(1).waitFor({ timeout: 30_000 });

    const rows = await page.locator('#file-rows tr').evaluateAll((trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td.name, td.folder, td.size')].map((td) => td.textContent)));
    assert.deepEqual(rows.sort(), [['photo.jpg', 'main/pictures', '146.5 KB'], ['quarterly report.pdf', 'main/pictures', '2.38 MB']]);
    await page.locator('#usage-text').getByText('2.53 MB of 2.86 MB used').waitFor();
    assert.deepEqual(Object.fromEntries(declared), { 'photo.jpg': sha256(photo), 'quarterly report.pdf': sha256(report) });
    const session = { Authorization: `Bearer ${await server.token('alice')}` };
    const records = (await (await fetch(`${server.url}/v1/files/all`, { headers: session })).json()).files as Array<{ filename: string; sha256: string }>;
    assert.deepEqual(records.map((r) => [r.filename, r.sha256]).sort(), [['photo.jpg', sha256(photo)], ['quarterly report.pdf', sha256(report)]]);

    // Copy link → the clipboard holds a signed URL that serves the file.
    await page.locator('#file-rows tr', { hasText: 'photo.jpg' }).getByRole('button', { name: 'Copy link' }).click();
    await page.locator('#toast').getByText('Link to “photo.jpg” copied').waitFor();
    const link = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(link, /\/get\/[\w-]+\?exp=\d+/);
    const linked = await fetch(link);
    assert.equal(linked.status, 200);
    assert.ok(Buffer.from(await linked.arrayBuffer()).equals(photo));

    await page.screenshot({ path: path.join(ARTIFACTS, 'web.png'), fullPage: true });

    // Select both → Download as ZIP.
    await page.locator('#select-all').check();
    await page.getByText('2 selected').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download as ZIP' }).click()]);
    const zipPath = path.join(dir, 'download.zip');
    await download.saveAs(zipPath);
    const entries = await readWithYauzl(zipPath);
    assert.deepEqual(entries.map((e) => e.name).sort(), ['main/pictures/photo.jpg', 'main/pictures/quarterly report.pdf']);
    assert.ok(entries.find((e) => e.name.endsWith('photo.jpg'))!.data.equals(photo));
    assert.ok(entries.find((e) => e.name.endsWith('.pdf'))!.data.equals(report));

    // Over quota: refused in words.
    writeFileSync(path.join(dir, 'too much.bin'), randomBytes(400_000));
    await uploadThroughDashboard(page, [path.join(dir, 'too much.bin')]);
    await page.locator('#banner').getByText('Not enough storage left in your quota').waitFor({ timeout: 20_000 });

    // Delete one.
    await page.locator('#file-rows tr', { hasText: 'quarterly report.pdf' }).getByRole('button', { name: 'Delete' }).click();
    await page.locator('#toast').getByText('Deleted “quarterly report.pdf”').waitFor();
    // The toast comes before the list is fetched again: wait for the row itself to go.
    await page.locator('#file-rows tr', { hasText: 'quarterly report.pdf' }).waitFor({ state: 'detached' });
    assert.equal(await page.locator('#file-rows tr').count(), 1);
    await page.locator('#usage-text').getByText('146.5 KB of 2.86 MB used').waitFor();
    await page.close();
  });

  test('signed in across visits until "Sign out"; an expired token is refused with the reason', async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.getByText('Signed in as alice').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in').waitFor();
    await signIn(page, await server.token('bob', -60));
    await page.locator('#banner').getByText('Your session token has expired').waitFor();
    assert.equal(await page.locator('#sign-in').isVisible(), true);
    await page.close();
  });
});

describe('web page served by another origin', () => {
  let api: TestServer;
  let pageHost: TestServer;
  let browser: BrowserContext;
  before(async () => {
    await buildWebPage();
    pageHost = await startTestServer();
    api = await startTestServer({ env: { CORS_ORIGINS: pageHost.url } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await api?.stop();
    await pageHost?.stop();
  });

  test('signs in, uploads and lists against the API origin given in ?server=', async () => {
    const page = await browser.newPage();
    await page.goto(`${pageHost.url}/?server=${encodeURIComponent(api.url)}`);
    await signIn(page, await api.token('erin'));
    await page.getByText('Signed in as erin').waitFor();
    const file = path.join(tempDir('sl-web-'), 'cross.txt');
    writeFileSync(file, 'across origins\n');
    await uploadThroughDashboard(page, [file]);
    await page.locator('#file-rows tr', { hasText: 'cross.txt' }).waitFor({ timeout: 20_000 });
    const listed = await (await fetch(`${api.url}/v1/files/all`, { headers: { Authorization: `Bearer ${await api.token('erin')}` } })).json();
    assert.equal(listed.files[0].sha256, sha256(readFileSync(file)));
    await page.close();
  });
});
