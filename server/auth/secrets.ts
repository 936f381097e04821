// Secrets the operator did not configure are generated once and kept, so a restart reuses them:
// tokens and links handed out stay valid. One instance (SQLite) keeps them in DATA_DIR/secrets.json
// (mode 0600); instances sharing PostgreSQL keep them there (server/db/pg/pg-secrets.ts), so every
// instance uses the same ones, and the first of several starting at once generates them.
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { UserTokenAlgorithm } from '../config.ts';

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
  /** Where generated secrets are kept (SecretStore.where). */
  keptIn: string;
}

type RetiredKey = JWK & { retired_at: number };

export interface StoredSecrets {
  service_token?: string;
  signing_key?: string;
  user_token_key?: JWK;
  retired_user_token_keys?: RetiredKey[];
}

/** Where generated secrets are kept. */
export interface SecretStore {
  /** For the operator: where they are ("DATA_DIR/secrets.json (mode 0600)", "PostgreSQL"). */
  readonly where: string;
  /** Whether any were kept yet. */
  exists(): Promise<boolean>;
  /**
   * Reads what is kept, runs `settle` on it, and keeps what it answers (undefined: unchanged), with no
   * other instance settling in between; answers what is kept afterwards.
   */
  update(settle: (stored: StoredSecrets) => Promise<StoredSecrets | undefined>): Promise<StoredSecrets>;
}

export function secretsPath(dataDir: string): string {
  return path.join(dataDir, 'secrets.json');
}

/** DATA_DIR/secrets.json: one instance, one process at a time. */
export function fileSecretStore(dataDir: string): SecretStore {
  const file = secretsPath(dataDir);
  return {
    where: `${file} (mode 0600)`,
    exists: async () => existsSync(file),
    async update(settle) {
      const stored = readSecretsFile(dataDir) ?? {};
      const changed = await settle(stored);
      if (!changed) return stored;
      writePrivateFile(file, JSON.stringify(changed, null, 2));
      return changed;
    },
  };
}

/** Reads the kept secrets file, if any (what an instance moving to PostgreSQL brings along). */
export function readSecretsFile(dataDir: string): StoredSecrets | undefined {
  const file = secretsPath(dataDir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets) : undefined;
}

export async function loadSecrets(
  store: SecretStore,
  configured: { serviceTokens: string[] | undefined; signingKeys: string[] | undefined; jwtAlgorithm?: UserTokenAlgorithm },
  now: () => number = Date.now,
): Promise<Secrets> {
  const generated: Secrets['generated'] = [];
  const stored = await store.update(async (kept) => {
    const settled = await settle(structuredClone(kept), configured, now, generated);
    return settled.changed ? settled.stored : undefined;
  });
  const retired = stored.retired_user_token_keys ?? [];
  return {
    serviceTokens: configured.serviceTokens ?? [stored.service_token!],
    signingKeys: configured.signingKeys ?? [stored.signing_key!],
    userTokenKey: stored.user_token_key!,
    userTokenKeys: [stored.user_token_key!, ...retired.map(({ retired_at: _r, ...key }) => key)],
    generated,
    keptIn: store.where,
  };
}

/** Generates what is missing and retires a key of another algorithm; `generated` says what was made. */
async function settle(
  stored: StoredSecrets,
  configured: { serviceTokens: string[] | undefined; signingKeys: string[] | undefined; jwtAlgorithm?: UserTokenAlgorithm },
  now: () => number,
  generated: Secrets['generated'],
): Promise<{ stored: StoredSecrets; changed: boolean }> {
  // Without a configured algorithm (npm run token) the stored key is used as it is, whatever its
  // algorithm: a tool must not rotate the key under a running server.
  const algorithm = configured.jwtAlgorithm ?? (stored.user_token_key?.alg as UserTokenAlgorithm | undefined) ?? 'RS256';
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
  return { stored, changed };
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
