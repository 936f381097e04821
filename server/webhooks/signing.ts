// Webhook signatures, as the Standard Webhooks specification has them (standardwebhooks.com), so a
// receiver can use any of its verifier libraries:
//   webhook-id:        the event's id; the same on every retry (a receiver de-duplicates on it)
//   webhook-timestamp: unix seconds of this attempt (a receiver refuses ones too far from its clock)
//   webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">
// The key: a `whsec_<base64>` secret is those bytes; any other secret is its UTF-8 bytes.
import { createHmac } from 'node:crypto';

export function webhookKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function signatureHeaders(key: Buffer, eventId: string, timestampSeconds: number, body: string): Record<string, string> {
  const mac = createHmac('sha256', key).update(`${eventId}.${timestampSeconds}.${body}`).digest('base64');
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${mac}`,
  };
}
