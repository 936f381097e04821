// Prometheus metrics (prom-client), exposed at /metrics (routes/metrics.ts says who may read them).
// Request counters are fed by the request observer (server/http/request-context.ts); upload
// counters and hook durations by wrapping the lifecycle the tus wiring calls (instrumentLifecycle).
import client, { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Lifecycle } from '../hooks/index.ts';
import { toAppError } from './errors.ts';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  requestDuration: Histogram<'method' | 'route'>;
  bytesReceived: Counter<'route'>;
  bytesSent: Counter<'route'>;
  uploads: Counter<'event'>;
  hookDuration: Histogram<'hook' | 'outcome'>;
  uploadsReceiving: Gauge;
  openDownloads: Gauge;
  quotaRejections: Counter;
  rateLimited: Counter<'limit'>;
  filesDamaged: Counter<'damage'>;
}

/** `unfinishedUploads` is read at each scrape (uploads known to the database, not yet finished). */
export function createMetrics(unfinishedUploads: () => number): Metrics {
  const registry = new Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'sl_' });
  const registers = [registry];
  new Gauge({
    name: 'sl_uploads_active',
    help: 'Unfinished uploads: created, not yet finished, expired or terminated',
    registers,
    collect() {
      this.set(unfinishedUploads());
    },
  });
  return {
    registry,
    requests: new Counter({ name: 'sl_http_requests_total', help: 'HTTP requests answered, by route pattern and status', labelNames: ['method', 'route', 'status'], registers }),
    requestDuration: new Histogram({
      name: 'sl_http_request_duration_seconds',
      help: 'From the request to the last byte of the response (a long upload or download counts whole)',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 600],
      registers,
    }),
    bytesReceived: new Counter({ name: 'sl_http_received_bytes_total', help: 'Bytes read from clients (headers and bodies)', labelNames: ['route'], registers }),
    bytesSent: new Counter({ name: 'sl_http_sent_bytes_total', help: 'Bytes written to clients by this process (bytes the proxy sends for offloaded links are not counted)', labelNames: ['route'], registers }),
    uploads: new Counter({ name: 'sl_uploads_total', help: 'Upload lifecycle events: created, finished, failed (finish refused or broke), discarded (terminated by its client, or its creation failed), expired', labelNames: ['event'], registers }),
    hookDuration: new Histogram({
      name: 'sl_hook_duration_seconds',
      help: 'Lifecycle step durations: create (metadata + quota), finish (sha256 + move + record), expire (one sweep)',
      labelNames: ['hook', 'outcome'],
      buckets: [0.0005, 0.002, 0.01, 0.05, 0.25, 1, 5, 30],
      registers,
    }),
    uploadsReceiving: new Gauge({ name: 'sl_uploads_receiving', help: 'Upload requests (PATCH, POST with a body) streaming right now', registers }),
    openDownloads: new Gauge({ name: 'sl_downloads_open', help: 'Signed-link and batch ZIP responses this process is sending right now', registers }),
    quotaRejections: new Counter({ name: 'sl_quota_rejections_total', help: 'Uploads refused with 413 quota_exceeded', registers }),
    rateLimited: new Counter({ name: 'sl_rate_limited_total', help: 'Requests refused with 429, by limit', labelNames: ['limit'], registers }),
    filesDamaged: new Counter({
      name: 'sl_files_damaged_total',
      help: 'Ready files found with their stored bytes missing or of another size, by damage (docs/storage-check.md); /healthz counts those still marked',
      labelNames: ['damage'],
      registers,
    }),
  };
}

/**
 * Counts and times every lifecycle step and logs the events the hooks do not log themselves.
 * The lifecycle object is shared by reference with the tus wiring and the upload routes, so its
 * methods are replaced in place.
 */
export function instrumentLifecycle(lifecycle: Lifecycle, metrics: Metrics, log: Logger): void {
  const timed = <A extends unknown[], R>(hook: string, fn: (...args: A) => R, after: (result: Awaited<R> | undefined, error: unknown, args: A) => void) =>
    (...args: A): R => {
      const stop = metrics.hookDuration.startTimer({ hook });
      const done = (result: Awaited<R> | undefined, error: unknown) => {
        stop({ outcome: error === undefined ? 'ok' : (toAppError(error)?.code ?? 'error') });
        after(result, error, args);
      };
      let result: R;
      try {
        result = fn(...args);
      } catch (error) {
        done(undefined, error);
        throw error;
      }
      if (result instanceof Promise) {
        return result.then(
          (value: Awaited<R>) => (done(value, undefined), value),
          (error: unknown) => {
            done(undefined, error);
            throw error;
          },
        ) as R;
      }
      done(result as Awaited<R>, undefined);
      return result;
    };
  const countQuota = (error: unknown) => {
    if (toAppError(error)?.code === 'quota_exceeded') metrics.quotaRejections.inc();
  };

  const { create, beforePatch, finish, discard, expire } = lifecycle;
  lifecycle.create = timed('create', create.bind(lifecycle), (row, error) => {
    countQuota(error);
    if (row) {
      metrics.uploads.inc({ event: 'created' });
      log.info({ event: 'upload.created', upload_id: row.id, user_id: row.user_id, length: row.length }, 'upload created');
    }
  });
  lifecycle.beforePatch = (row, req) => {
    try {
      return beforePatch.call(lifecycle, row, req);
    } catch (error) {
      countQuota(error);
      throw error;
    }
  };
  lifecycle.finish = timed('finish', finish.bind(lifecycle), (file, error, [upload]) => {
    if (file) metrics.uploads.inc({ event: 'finished' });
    else {
      metrics.uploads.inc({ event: 'failed' });
      const known = toAppError(error);
      log.warn({ event: 'upload.failed', upload_id: upload.id, code: known?.code ?? 'internal', ...(known ? {} : { err: error }) }, 'upload finish failed');
    }
  });
  lifecycle.discard = async (uploadId, reason) => {
    await discard.call(lifecycle, uploadId, reason);
    metrics.uploads.inc({ event: 'discarded' });
    log.info({ event: 'upload.discarded', upload_id: uploadId }, 'upload removed');
  };
  lifecycle.expire = timed('expire', expire.bind(lifecycle), (count) => {
    if (count) metrics.uploads.inc({ event: 'expired' }, count);
  });
}
