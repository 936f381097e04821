// Virus scanning as a whole, for services.ts and start.ts: the clamd client, the queue's SQL and
// the worker (hooks/scan.ts), built when CLAMD_SOCKET or CLAMD_HOST/CLAMD_PORT is set.
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { HookDeps } from '../../hooks/deps.ts';
import { createScanner, type Scanner } from '../../hooks/scan.ts';
import type { ClamdConfig } from '../config.ts';
import type { Db } from '../db/open.ts';
import { ScanRepo } from '../db/scan-repo.ts';
import { createClamd, type Clamd } from './clamd.ts';
import { registerScanMetrics } from './metrics.ts';

export interface Scanning {
  clamd: Clamd;
  scanner: Scanner;
  repo: ScanRepo;
  /** For /healthz: informational, never a failed check (files just wait while clamd is away). */
  health(): Promise<{ clamd: 'up' | 'down'; queue_depth: number }>;
}

/** How long /healthz waits for PONG. */
const HEALTH_PING_MS = 2000;

export function createScanning(config: Readonly<ClamdConfig>, db: Db, hookDeps: HookDeps): Scanning {
  const clamd = createClamd(config);
  const repo = new ScanRepo(db);
  const scanner = createScanner(hookDeps, { repo, clamd, maxBackoffMs: config.maxBackoffMs });
  return {
    clamd,
    scanner,
    repo,
    async health() {
      return { clamd: (await clamd.ping(Math.min(HEALTH_PING_MS, config.timeoutMs))) ? 'up' : 'down', queue_depth: repo.depth() };
    },
  };
}

/**
 * Start-up, after the repair of interrupted commits: the worker starts (interrupted scans wait
 * again, unscanned files are queued) and its metrics are registered. Returns the worker's stop.
 */
export function startScanning(scanning: Scanning | undefined, registry: Registry, log: Logger): () => Promise<void> {
  if (!scanning) return async () => {};
  registerScanMetrics(registry, scanning.scanner, scanning.clamd);
  const { interrupted, backfilled } = scanning.scanner.start();
  log.info({ clamd: scanning.clamd.address, interrupted, backfilled, queue_depth: scanning.repo.depth() }, 'virus scanning on');
  return () => scanning.scanner.stop();
}
