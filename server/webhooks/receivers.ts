// The configured webhook URLs, as the dispatcher uses them: where to POST, with which credentials,
// and how to name a receiver in logs.
//
// A receiver often authenticates its sender with the URL itself: `https://user:pass@host/hook`
// (HTTP Basic), or a token in the path or query (`/services/T0/B0/XYZ`, `?token=…`). The userinfo
// is taken out of the URL that is requested, so that no error message quotes the password, and
// sent as `Authorization: Basic` (RFC 7617); logs name a receiver by its origin and its position
// in WEBHOOK_URLS, never by its path, query or credentials (the same rule as request logs: no
// query string is ever logged).
// Deliveries keep the URL exactly as configured: it is their key in the outbox.

export interface WebhookReceiver {
  /** As configured in WEBHOOK_URLS: the key of its deliveries in the outbox. */
  url: string;
  /** What is requested: the URL without its userinfo. */
  target: string;
  /** `Basic …` when the URL carried a user or password. */
  authorization: string | undefined;
  /** For logs: `#<position> <origin>`. */
  label: string;
}

export function parseReceivers(urls: readonly string[]): WebhookReceiver[] {
  return urls.map((url, index) => {
    const parsed = new URL(url);
    let authorization: string | undefined;
    if (parsed.username !== '' || parsed.password !== '') {
      const credentials = `${decoded(parsed.username)}:${decoded(parsed.password)}`;
      authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
      parsed.username = '';
      parsed.password = '';
    }
    return { url, target: parsed.href, authorization, label: `#${index + 1} ${parsed.origin}` };
  });
}

/** URL userinfo is percent-encoded; a stray `%` that encodes nothing stays as it is. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
