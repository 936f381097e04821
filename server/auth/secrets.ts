// Secrets the operator did not configure are generated once and kept in DATA_DIR/secrets.json
// (mode 0600), so a restart reuses them: tokens and links handed out stay valid.
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** Algorithms the server's own user-token key may use (AUTH_JWT_ALGORITHM). */
export const USER_TOKEN_ALGORITHMS = ['RS256', 'ES256'] as const;
export type UserTokenAlgorithm = (typeof USER_TOKEN_ALGORITHMS)[number];

/**
 * A key replaced because AUTH_JWT_ALGORITHM changed still verifies (and is still published in the
 * JWKS) for as long as the longest token it can have signed: `npm run token` mints up to 8760 h.
 */
export const RETIRED_KEY_KEPT_MS = 366 * 24 * 3600 * 1000;

export interface Secrets {
  serviceTokens: string[];
  signingKeys: string[];
  /** The server's own key that signs user tokens (private JWK with kid, alg and use). */
  userTokenKey: JWK;
  /** Every own key that verifies user tokens: the signing key first, then retired ones still in their window. */
  userTokenKeys: JWK[];
  /** Which secrets were generated (so start-up can tell the operator where to find them). */
  generated: Array<'service_token' | 'signing_key' | 'user_token_key'>;
}

type RetiredKey = JWK & { retired_at: number };

interface StoredSecrets {
  service_token?: string;
  signing_key?: string;
  user_token_key?: JWK;
  retired_user_token_keys?: RetiredKey[];
}

export function secretsPath(dataDir: string): string {
  return path.join(dataDir, 'secrets.json');
}

export async function loadSecrets(
  dataDir: string,
  configured: { serviceTokens: string[] | undefined; signingKeys: string[] | undefined; jwtAlgorithm?: UserTokenAlgorithm },
  now: () => number = Date.now,
): Promise<Secrets> {
  const file = secretsPath(dataDir);
  const stored: StoredSecrets = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets) : {};
  // Without a configured algorithm (npm run token) the stored key is used as it is, whatever its
  // algorithm: a tool must not rotate the key under a running server.
  const algorithm = configured.jwtAlgorithm ?? (stored.user_token_key?.alg as UserTokenAlgorithm | undefined) ?? 'RS256';
  const generated: Secrets['generated'] = [];
  let changed = false;

  if (!configured.serviceTokens && !stored.service_token) {
    stored.service_token = randomBytes(32).toString('base64url');
    generated.push('service_token');
    changed = true;
  }
  if (!configured.signingKeys && !stored.signing_key) {
    stored.signing_key = randomBytes(32).toString('base64url');
    generated.push('signing_key');
    changed = true;
  }
  const retired = (stored.retired_user_token_keys ?? []).filter((key) => key.retired_at + RETIRED_KEY_KEPT_MS > now());
  if (retired.length !== (stored.retired_user_token_keys ?? []).length) changed = true;
  if (stored.user_token_key && stored.user_token_key.alg !== algorithm) {
    // The algorithm changed (AUTH_JWT_ALGORITHM set to another, or unset over a stored key of
    // another algorithm): a new key signs from here on; the old one keeps verifying what it signed.
    retired.unshift({ ...stored.user_token_key, retired_at: now() });
    delete stored.user_token_key;
  }
  if (!stored.user_token_key) {
    stored.user_token_key = await generateUserTokenKey(algorithm);
    generated.push('user_token_key');
    changed = true;
  }
  stored.retired_user_token_keys = retired;
  if (retired.length === 0) delete stored.retired_user_token_keys;
  if (changed) writePrivateFile(file, JSON.stringify(stored, null, 2));
  return {
    serviceTokens: configured.serviceTokens ?? [stored.service_token!],
    signingKeys: configured.signingKeys ?? [stored.signing_key!],
    userTokenKey: stored.user_token_key,
    userTokenKeys: [stored.user_token_key, ...retired.map(({ retired_at: _r, ...key }) => key)],
    generated,
  };
}

async function generateUserTokenKey(algorithm: UserTokenAlgorithm): Promise<JWK> {
  // 2048-bit RSA: what the original server's clients verify (RS256), and jose's minimum.
  const options = algorithm === 'RS256' ? { extractable: true, modulusLength: 2048 } : { extractable: true };
  const { privateKey } = await generateKeyPair(algorithm, options);
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: algorithm, use: 'sig' };
}

function writePrivateFile(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
