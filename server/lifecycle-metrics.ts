// The lifecycle's observer (hooks/index.ts LifecycleObserver) fed into the metrics: it sits above
// both, so the metrics know nothing of the lifecycle and the lifecycle nothing of Prometheus.
import type { Logger } from 'pino';
import type { LifecycleObserver } from '../hooks/index.ts';
import { toAppError } from './errors.ts';
import type { Metrics } from './metrics.ts';

/** Counts and times every lifecycle step and logs the events the hooks do not log themselves. */
export function lifecycleObserver(metrics: Metrics, log: Logger): LifecycleObserver {
  const outcomeOf = (error: unknown) => (error === undefined ? 'ok' : (toAppError(error)?.code ?? 'error'));
  return {
    step(hook, run) {
      const stop = metrics.hookDuration.startTimer({ hook });
      let result;
      try {
        result = run();
      } catch (error) {
        stop({ outcome: outcomeOf(error) });
        throw error;
      }
      if (!(result instanceof Promise)) {
        stop({ outcome: 'ok' });
        return result;
      }
      return result.then(
        (value) => (stop({ outcome: 'ok' }), value),
        (error: unknown) => {
          stop({ outcome: outcomeOf(error) });
          throw error;
        },
      );
    },
    created(row, requestId) {
      metrics.uploads.inc({ event: 'created' });
      log.info({ event: 'upload.created', request_id: requestId, upload_id: row.id, user_id: row.user_id, length: row.length }, 'upload created');
    },
    finished() {
      metrics.uploads.inc({ event: 'finished' });
    },
    finishFailed(uploadId, error, requestId) {
      metrics.uploads.inc({ event: 'failed' });
      const known = toAppError(error);
      log.warn({ event: 'upload.failed', request_id: requestId, upload_id: uploadId, code: known?.code ?? 'internal', ...(known ? {} : { err: error }) }, 'upload finish failed');
    },
    discarded(uploadId, requestId) {
      metrics.uploads.inc({ event: 'discarded' });
      log.info({ event: 'upload.discarded', request_id: requestId, upload_id: uploadId }, 'upload removed');
    },
    expired(count) {
      if (count) metrics.uploads.inc({ event: 'expired' }, count);
    },
    refused(error) {
      if (toAppError(error)?.code === 'quota_exceeded') metrics.quotaRejections.inc();
    },
  };
}
