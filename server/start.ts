// Starts a server from a Config: services, start-up repair and expiry, then listen. Used by
// main.ts and by tests (which pass port 0 and get the bound URL back).
import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { createApp } from './app.ts';
import type { Config } from './config.ts';
import { createServices, type Services } from './services.ts';

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  now?: () => number;
}

export async function startServer(config: Readonly<Config>, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? pino({ level: config.logLevel });
  const services = await createServices(config, log, options.now);
  const repaired = await services.lifecycle.repair();
  if (repaired.committed + repaired.deleted + repaired.lost + repaired.orphans > 0) {
    log.warn({ ...repaired }, 'finished work interrupted by the last shutdown');
  }
  const expired = await services.lifecycle.expire();
  if (expired > 0) log.info({ expired }, 'removed idle uploads');

  const app = createApp(services);
  const server = await new Promise<HttpServer>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s as HttpServer));
    (s as HttpServer).once('error', reject);
  });
  // A single PATCH may stream for hours on a slow link; Node's default 5-minute request timeout
  // would cut it. Headers must still arrive promptly.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;

  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  if (!config.publicUrl) services.publicUrl.value = url;
  const stopHousekeeping = services.lifecycle.startHousekeeping(
    Math.min(60_000, Math.max(1000, (config.uploadExpirySeconds * 1000) / 4)),
  );
  log.info({ url, public_url: services.publicUrl.value, data_dir: config.dataDir, storage: config.storage }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    services,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        stopHousekeeping();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await closed;
        clearTimeout(timer);
        services.db.close();
      })();
      return closing;
    },
  };
}
