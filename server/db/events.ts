// What the webhook events are, and where the code that changes things reports them.

export type EventType = 'upload.created' | 'upload.finished' | 'upload.failed' | 'file.deleted' | 'file.scanned';

/**
 * Writes an event and its deliveries to the durable outbox (outbox.ts). Lifecycle steps reach it
 * as `tx.outbox.emit` of the transaction of the change it reports (server/db/contract.ts), so the
 * event exists if and only if the change does. It never throws for delivery reasons and never
 * changes the answer a client gets. `subject` is the upload id, constant from upload.created to
 * file.deleted: events with one subject reach each receiver in the order they were emitted.
 */
export interface EventSink {
  emit(type: EventType, subject: string, data: Record<string, unknown>): void;
}
