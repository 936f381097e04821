// The web page resumes an upload after its tab was closed: Golden Retriever restores the queued
// file, and tus continues the same upload from the server's offset instead of starting over.
// The server sits behind a slow loopback proxy (its PUBLIC_URL) so the tab can close part-way.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { createUserSession } from '../../clients/sdk/node.ts';
import { buildWebPage } from '../../clients/web/build.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { ownTmpDir, uploadBytesHeld } from '../helpers/upload-bytes-held.ts';
import { until } from '../helpers/until.ts';
import { launchBrowser } from './helpers/browser.ts';
import { startSlowProxy, type SlowProxy } from './helpers/slow-proxy.ts';

const MiB = 1024 * 1024;
// On S3 the server gathers a PATCH's bytes in part files there (uploadBytesHeld).
ownTmpDir('sl-web-resume-tmp-');

/** Every tus request the page makes: method, URL and Upload-Offset. */
function tusRequests(page: Page): Array<{ method: string; url: string; offset: number | null }> {
  const seen: Array<{ method: string; url: string; offset: number | null }> = [];
  page.on('request', (req) => {
    if (!req.url().includes('/v1/uploads')) return;
    const offset = req.headers()['upload-offset'];
    seen.push({ method: req.method(), url: req.url(), offset: offset === undefined ? null : Number(offset) });
  });
  return seen;
}

describe('web page: resume after the tab was closed', () => {
  let proxy: SlowProxy;
  let server: TestServer;
  let browser: BrowserContext;
  before(async () => {
    await buildWebPage();
    proxy = await startSlowProxy(1 * MiB);
    server = await startTestServer({ env: { PUBLIC_URL: proxy.url } });
    proxy.target = server.port;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
  });

  /**
   * Signs in on a new tab of `context`, starts uploading `file` through the Dashboard, closes the
   * tab once the server holds at least `partBytes`, and cuts what Chromium may still send. Returns
   * the upload's URL and the offset the server kept; `requests` records the tab's tus requests.
   */
  async function uploadPartThenCloseTab(context: BrowserContext, token: string, file: string, size: number, partBytes: number) {
    const session = createUserSession({ baseUrl: server.url, token });
    const page = await context.newPage();
    const requests = tusRequests(page);
    let uploadUrl: string | undefined;
    page.on('response', (res) => {
      if (res.request().method() === 'POST' && res.url().endsWith('/v1/uploads')) uploadUrl = res.headers()['location'];
    });
    await page.goto(proxy.url);
    await page.locator('#token-input').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#workspace').waitFor();
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.locator('#dashboard .uppy-Dashboard-browse').click()]);
    await chooser.setFiles(file);
    await page.locator('.uppy-StatusBar-actionBtn--upload').click();
    let received = 0;
    for (let i = 0; i < 600 && received < partBytes; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (uploadUrl) received = uploadBytesHeld(server, uploadUrl);
    }
    assert.ok(uploadUrl && received >= partBytes, `the server holds part of the upload (${received})`);
    await page.close();
    // Chromium's network service may keep sending a closed tab's request body for a while; cut it
    // as a lost connection would, so the server keeps only what it had.
    proxy.dropConnections();
    const uploadId = uploadUrl.split('/').pop()!;
    await until('the server to end the cut request', () => !server.services.lifecycle.requests.isReceiving(uploadId));
    const stored = await session.uploadStatus(uploadUrl);
    assert.ok(stored && stored.offset > 0 && stored.offset < size, `part-way after the tab closed: ${stored?.offset}`);
    return { uploadUrl, offsetAtClose: stored.offset, requests, session };
  }

  /** The page opened again after the tab was closed, signed in as `user`, with its tus requests recorded. */
  async function reopen(context: BrowserContext, user: string) {
    proxy.bytesPerSecond = Infinity;
    const page = await context.newPage();
    const requests = tusRequests(page);
    await page.goto(proxy.url);
    await page.getByText(`Signed in as ${user}`).waitFor();
    return { page, requests };
  }

  /** The reopened page continued the same upload from (at least) the server's offset, and the file is whole. */
  async function assertResumed(
    requests: ReturnType<typeof tusRequests>,
    closed: Awaited<ReturnType<typeof uploadPartThenCloseTab>>,
    data: Buffer,
  ) {
    assert.deepEqual(requests.filter((r) => r.method === 'POST'), [], `no new upload was created: ${JSON.stringify(requests)}`);
    const patches = requests.filter((r) => r.method === 'PATCH');
    assert.ok(patches.length > 0 && patches.every((p) => p.url === closed.uploadUrl), JSON.stringify(requests));
    assert.ok(patches[0]!.offset! >= closed.offsetAtClose, `resumed at ${patches[0]!.offset}, the server had ${closed.offsetAtClose}`);
    const { files } = await closed.session.listMyFiles();
    assert.equal(files.length, 1);
    assert.equal(files[0]!.size, data.length);
    assert.equal(files[0]!.sha256, createHash('sha256').update(data).digest('hex'));
  }

  test('close the tab mid-upload, open the page again: the same upload continues from its offset', async () => {
    const data = randomBytes(4 * MiB);
    const file = path.join(tempDir('sl-web-'), 'film.mov');
    writeFileSync(file, data);
    const token = await server.token('frank');
    const closed = await uploadPartThenCloseTab(browser, token, file, data.length, 512 * 1024);
    assert.equal(closed.requests.filter((r) => r.method === 'POST').length, 1);

    const { page: second, requests } = await reopen(browser, 'frank');
    // Golden Retriever put the file back in the Dashboard; starting it again resumes.
    await second.locator('.uppy-Dashboard-Item', { hasText: 'film.mov' }).waitFor();
    await second.locator('.uppy-StatusBar-actionBtn--upload').click();
    await second.locator('#file-rows tr', { hasText: 'film.mov' }).waitFor({ timeout: 30_000 });
    await assertResumed(requests, closed, data);
  });

  test('a file too big for Golden Retriever (over 10 MiB): re-selected after the tab closed, it resumes instead of starting over', async () => {
    // Golden Retriever keeps file bytes in IndexedDB only up to 10 MiB (no service worker here);
    // a bigger file comes back as a "ghost" the person must pick again. tus-js-client then finds
    // the upload by the file's fingerprint and resumes it.
    const data = randomBytes(24 * MiB);
    const file = path.join(tempDir('sl-web-'), 'archive.bin');
    writeFileSync(file, data);
    const token = await server.token('gina');
    proxy.bytesPerSecond = 1 * MiB;
    const context = await launchBrowser();
    try {
      const closed = await uploadPartThenCloseTab(context, token, file, data.length, 1 * MiB);

      const { page: second, requests } = await reopen(context, 'gina');
      // The ghost is listed, waiting for its bytes; re-adding the same file (name, size, type,
      // date) through the Dashboard's "Add more" replaces it, and tus resumes it.
      await second.locator('.uppy-Dashboard-Item.is-ghost', { hasText: 'archive.bin' }).waitFor();
      await second.locator('#dashboard .uppy-DashboardContent-addMore').click();
      const [again] = await Promise.all([second.waitForEvent('filechooser'), second.locator('#dashboard .uppy-Dashboard-browse').first().click()]);
      await again.setFiles(file);
      await second.locator('.uppy-StatusBar-actionBtn--upload').click();
      await second.locator('#file-rows tr', { hasText: 'archive.bin' }).waitFor({ timeout: 60_000 });
      await assertResumed(requests, closed, data);
    } finally {
      await context.close();
    }
  });
});
