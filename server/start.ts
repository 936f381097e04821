// Starts a server from a Config: services, start-up repair and expiry, then listen. Used by
// main.ts and by tests (which pass port 0 and get the bound URL back).
import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { sweepIntervalMs } from '../hooks/expiry.ts';
import { createFetch, type EdgeDeps } from './app.ts';
import type { Config } from './config.ts';
import { answerClientError } from './http/client-error.ts';
import { createDrain } from './http/drain.ts';
import { TokenBuckets } from './http/rate-limit.ts';
import { createLogger } from './logging.ts';
import type { Metrics } from './metrics.ts';
import { createServices, type Services } from './services.ts';
import { releaseStartupMemory } from './startup-memory.ts';

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  metrics: Metrics;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  now?: () => number;
  /** false: tus requests go through Hono's chain as every other (tests compare the two). */
  uploadFastPath?: boolean;
}

export async function startServer(config: Readonly<Config>, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  // Without PUBLIC_URL, links and Location headers name the address bound below.
  let bound: string | undefined;
  const publicUrl = () => config.publicUrl ?? bound ?? `http://${config.host}:${config.port}`;
  const services = await createServices(config, log, { now: options.now, publicUrl });
  const { metrics } = services;
  const dispatcher = services.webhooks?.dispatcher;
  const repaired = await services.lifecycle.repair();
  if (repaired.committed + repaired.deleted + repaired.lost + repaired.orphans + repaired.released > 0) {
    log.warn({ ...repaired }, 'finished work interrupted by the last shutdown');
  }
  // After the repair: files it committed are queued by the worker's backfill.
  await services.scanWorker?.start();
  const expired = await services.lifecycle.expire();
  if (expired > 0) log.info({ expired }, 'removed idle uploads');

  const drain = createDrain();
  const { rateLimits } = config;
  const edge: EdgeDeps = {
    metrics,
    drain,
    limits: {
      downloadPerClient: new TokenBuckets(rateLimits.download, services.now),
      downloadPerLink: new TokenBuckets(rateLimits.link, services.now),
      authFailure: new TokenBuckets(rateLimits.authFailure, services.now),
    },
  };
  // tus requests skip Hono's middleware chain (server/upload-fast-path.ts).
  const fetch = createFetch(services, edge, { fastPath: options.uploadFastPath });
  const server = await new Promise<HttpServer>((resolve, reject) => {
    const s = serve({ fetch, port: config.port, hostname: config.host }, () => resolve(s as HttpServer));
    (s as HttpServer).once('error', reject);
  });
  // A single PATCH may stream for hours on a slow link; Node's default 5-minute request timeout
  // would cut it. Headers must still arrive promptly.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.on('clientError', answerClientError);

  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  bound = url;
  const stopHousekeeping = services.lifecycle.startHousekeeping(sweepIntervalMs(config.uploadExpirySeconds));
  await dispatcher?.start();
  await releaseStartupMemory();
  log.info({ url, public_url: services.publicUrl(), data_dir: config.dataDir, storage: config.storage }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    services,
    metrics,
    close(graceMs = config.shutdownGraceSeconds * 1000) {
      closing ??= (async () => {
        // 1. Stop accepting; idle keep-alive connections go now, busy ones after their response
        //    (which says Connection: close from here on).
        const housekeepingStopped = stopHousekeeping();
        drain.startDraining();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // 2. In-flight requests get `graceMs` to finish. An upload still streaming then is cut: the
        //    bytes that reached the disk stay, and its client resumes from them (HEAD → offset).
        const finished = await drain.idle(graceMs);
        if (!finished) {
          log.warn({ in_flight: drain.active, grace_ms: graceMs }, 'shutdown: cutting requests still in flight');
          server.closeAllConnections();
          // Cut requests still settle their bookkeeping (reservations, offsets) in the database.
          if (!(await drain.idle(CUT_SETTLE_MS))) log.error({ in_flight: drain.active }, 'shutdown: requests did not settle after being cut');
        }
        await closed;
        // Webhook requests in flight are abandoned; they stay pending for the next start.
        await dispatcher?.stop();
        // A scan in flight is aborted: its file goes back to 'pending' and its job stays for the next start.
        await services.scanWorker?.stop();
        // 3. Only now the locks and the database (SQLite checkpoints its WAL into the main file).
        await housekeepingStopped;
        await services.close();
        log.info({ cut: !finished }, 'shutdown complete');
      })();
      return closing;
    },
  };
}

/** How long cut requests get to record what they stored before the database closes. */
const CUT_SETTLE_MS = 5000;
