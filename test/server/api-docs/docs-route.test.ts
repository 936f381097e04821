// /docs (Swagger UI) and /docs/openapi.json carry the web page's protections: a Content Security
// Policy with frame-ancestors 'none', X-Frame-Options, nosniff, no referrer. In Chromium the UI
// still renders under that policy with no violation, and a page elsewhere cannot frame it.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { launchBrowser } from '../../clients/helpers/browser.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { until } from '../../helpers/until.ts';

describe('/docs security headers', () => {
  let server: TestServer;
  let browser: BrowserContext;
  before(async () => {
    server = await startTestServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('every /docs answer carries the policy and the page headers', async () => {
    for (const path of ['/docs', '/docs/openapi.json', '/docs/init.js', '/docs/assets/swagger-ui.css', '/docs/assets/swagger-ui-bundle.js']) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, `${path}: ${csp}`);
      assert.match(csp, /default-src 'self'/, path);
      assert.doesNotMatch(csp, /script-src[^;]*'unsafe-inline'/, `${path}: no inline script`);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
    }
  });

  test('Swagger UI renders under the policy without a violation', async () => {
    const tab = await browser.newPage();
    const violations: string[] = [];
    tab.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    await tab.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => console.error(`Content Security Policy violation: ${event.violatedDirective} ${event.blockedURI}`));
    });
    const res = await tab.goto(`${server.url}/docs`);
    assert.match(res!.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    await tab.locator('.swagger-ui .info .title').filter({ hasText: 'Stream-Line Upload' }).waitFor();
    // Opening an operation renders its parameters, examples and highlighted schemas.
    // The files listing has a response schema (the tus operations describe headers only).
    await tab.locator('.opblock-summary').filter({ hasText: '/v1/files/all' }).first().click();
    await tab.locator('.opblock-body').first().waitFor();
    await tab.locator('.opblock-body .highlight-code, .opblock-body .model-box').first().waitFor();
    assert.deepEqual(violations, []);
    await tab.close();
  });

  test('a page on another origin cannot frame it', async () => {
    const framing = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(`<!doctype html><iframe id="docs" src="${server.url}/docs"></iframe>`);
    });
    await new Promise<void>((resolve) => framing.listen(0, '127.0.0.1', resolve));
    const tab = await browser.newPage();
    try {
      let refused = false;
      tab.on('console', (message) => {
        if (/frame-ancestors|Refused to display/i.test(message.text())) refused = true;
      });
      await tab.goto(`http://127.0.0.1:${(framing.address() as AddressInfo).port}/`);
      const rendered = async () => {
        const frame = tab.frames().find((f) => f !== tab.mainFrame());
        return frame ? frame.locator('.swagger-ui .info').count().catch(() => 0) : 0;
      };
      // Whichever comes first: Chromium refusing the frame, or the framed UI rendering.
      await until('the frame to be refused or rendered', async () => refused || (await rendered()) > 0);
      assert.equal(await rendered(), 0, 'the framed page rendered');
      assert.ok(refused);
    } finally {
      await tab.close();
      framing.closeAllConnections();
      await new Promise((resolve) => framing.close(resolve));
    }
  });
});
