// Debian's Chromium driven by playwright-core, kept on loopback: no network beyond 127.0.0.1,
// no component updates or sync. Playwright refuses --user-data-dir in args, hence a persistent
// context on a fresh directory.
import { chromium, type BrowserContext } from 'playwright-core';
import { tempDir } from '../../helpers/server.ts';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost',
  '--component-updater=url-source=http://127.0.0.1:9/',
];

export async function launchBrowser(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(tempDir('sl-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 1000 },
  });
}
