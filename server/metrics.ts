// Prometheus metrics (prom-client), exposed at /metrics (metrics-route.ts says who may read them).
// Request counters are fed by the request observer (server/http/request-context.ts); upload
// counters and hook durations by the observer the lifecycle is built with (lifecycle-metrics.ts).
import client, { Counter, Gauge, Histogram, Registry } from 'prom-client';

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
export function createMetrics(unfinishedUploads: () => Promise<number>): Metrics {
  const registry = new Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'sl_' });
  const registers = [registry];
  new Gauge({
    name: 'sl_uploads_active',
    help: 'Unfinished uploads: created, not yet finished, expired or terminated',
    registers,
    async collect() {
      this.set(await unfinishedUploads());
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
