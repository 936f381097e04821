// `Authorization: Bearer <token>` (RFC 6750 §2.1), read the same way wherever a bearer token is
// accepted: the user's JWT (server/auth/caller.ts) and the metrics token (server/metrics-route.ts).

/** The token, or undefined when the header is not one "Bearer <token>". */
export function bearerToken(authorization: string): string | undefined {
  return /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(authorization)?.[1];
}
