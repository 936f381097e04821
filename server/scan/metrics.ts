// Scan metrics (README "Operations"), registered beside the server's own (server/metrics.ts):
// queue depth read from SQLite and clamd's reachability probed at each scrape; verdicts, retries
// and scan durations counted as the worker reports them.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Scanner } from '../../hooks/scan.ts';
import type { Clamd } from './clamd.ts';

/** A scrape must not hang on a clamd that accepts connections and then says nothing. */
const SCRAPE_PING_MS = 2000;

export function registerScanMetrics(registry: Registry, scanner: Scanner, clamd: Clamd): void {
  const registers = [registry];
  new Gauge({
    name: 'sl_scan_queue_depth',
    help: 'Files waiting for a virus-scan verdict (queued, backing off, or being scanned)',
    registers,
    collect() {
      this.set(scanner.depth());
    },
  });
  new Gauge({
    name: 'sl_clamd_up',
    help: 'Whether clamd answered PING at this scrape (1) or not (0)',
    registers,
    async collect() {
      this.set((await clamd.ping(SCRAPE_PING_MS)) ? 1 : 0);
    },
  });
  const scans = new Counter({ name: 'sl_scans_total', help: 'Virus-scan verdicts recorded: clean, infected, error (clamd could not scan the file)', labelNames: ['verdict'], registers });
  const retries = new Counter({ name: 'sl_scan_retries_total', help: 'Scan attempts that gave no verdict and were postponed: clamd unreachable or silent, or the file unreadable', labelNames: ['reason'], registers });
  const duration = new Histogram({
    name: 'sl_scan_duration_seconds',
    help: 'From opening the file to clamd\'s verdict',
    buckets: [0.01, 0.05, 0.25, 1, 5, 30, 120, 600],
    registers,
  });
  for (const verdict of ['clean', 'infected', 'error']) scans.inc({ verdict }, 0);
  for (const reason of ['clamd', 'storage']) retries.inc({ reason }, 0);
  scanner.listen({
    verdict(status, seconds) {
      scans.inc({ verdict: status });
      duration.observe(seconds);
    },
    retry(reason) {
      retries.inc({ reason });
    },
  });
}
