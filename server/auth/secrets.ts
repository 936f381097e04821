// Secrets the operator did not configure are generated once and kept in DATA_DIR/secrets.json
// (mode 0600), so a restart reuses them: tokens and links handed out stay valid.
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export interface Secrets {
  serviceTokens: string[];
  signingKeys: string[];
  /** The server's own ES256 key for user tokens (private JWK with kid and alg). */
  userTokenKey: JWK;
  /** Which secrets were generated (so start-up can tell the operator where to find them). */
  generated: Array<'service_token' | 'signing_key' | 'user_token_key'>;
}

interface StoredSecrets {
  service_token?: string;
  signing_key?: string;
  user_token_key?: JWK;
}

export function secretsPath(dataDir: string): string {
  return path.join(dataDir, 'secrets.json');
}

export async function loadSecrets(
  dataDir: string,
  configured: { serviceTokens: string[] | undefined; signingKeys: string[] | undefined },
): Promise<Secrets> {
  const file = secretsPath(dataDir);
  const stored: StoredSecrets = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets) : {};
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
  if (!stored.user_token_key) {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    stored.user_token_key = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'ES256', use: 'sig' };
    generated.push('user_token_key');
    changed = true;
  }
  if (changed) writePrivateFile(file, JSON.stringify(stored, null, 2));
  return {
    serviceTokens: configured.serviceTokens ?? [stored.service_token!],
    signingKeys: configured.signingKeys ?? [stored.signing_key!],
    userTokenKey: stored.user_token_key,
    generated,
  };
}

function writePrivateFile(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
