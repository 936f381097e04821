// What the webhook events are, and where the code that changes things reports them.

export type EventType = 'upload.created' | 'upload.finished' | 'upload.failed' | 'file.deleted' | 'file.scanned';

/**
 * Where lifecycle steps report what happened, for webhooks (server/webhooks/). emit() writes to a
 * durable outbox (outbox.ts): call it inside the SQLite transaction of the change it reports, so the
 * event exists if and only if the change does. It never throws for delivery reasons and never
 * changes the answer a client gets. `subject` is the upload id, constant from upload.created to
 * file.deleted: events with one subject reach each receiver in the order they were emitted.
 */
export interface EventSink {
  emit(type: EventType, subject: string, data: Record<string, unknown>): void;
}

export const noEvents: EventSink = { emit() {} };
