// `npm run token -- <user_id> [hours]` prints a user JWT signed with this server's own key, read
// from DATA_DIR/secrets.json, or from PostgreSQL with DATABASE_URL (start the server once first). `npm run token -- --service` prints
// the service token. Output is the bare secret, so `TOKEN=$(npm run -s token -- alice)` works.
import pino from 'pino';
import { createUserTokenSigner } from './auth/jwt.ts';
import { fileSecretStore, loadSecrets, readSecretsFile, type SecretStore } from './auth/secrets.ts';
import { loadConfig } from './config.ts';
import { isValidUserId } from './user-id.ts';

const [subject, hoursArg] = process.argv.slice(2);
const config = loadConfig(process.env);
let store: SecretStore = fileSecretStore(config.dataDir);
let closeDb = async () => {};
if (config.databaseUrl !== undefined) {
  const { createPgPool } = await import('./db/pg/pool.ts');
  const { pgSecretStore } = await import('./db/pg/pg-secrets.ts');
  const pool = createPgPool(config.databaseUrl, pino({ level: 'silent' }), { max: 1 });
  store = pgSecretStore(pool, () => readSecretsFile(config.dataDir));
  closeDb = () => pool.end();
}
const exists = await store.exists().catch(() => false);
if (!exists) {
  await closeDb();
  console.error(`no secrets in ${store.where} yet: start the server once (node server/serve.mjs), then run this again`);
  process.exit(1);
}
const secrets = await loadSecrets(store, { ...config, jwtAlgorithm: undefined });
await closeDb();
if (subject === '--service') {
  console.log(secrets.serviceTokens[0]);
} else if (subject === undefined || !isValidUserId(subject)) {
  console.error('usage: npm run -s token -- <user_id> [hours]    (user_id: [A-Za-z0-9._-]{1,128})');
  console.error('       npm run -s token -- --service');
  process.exit(2);
} else {
  const hours = hoursArg === undefined ? 24 : Number(hoursArg);
  if (!Number.isInteger(hours) || hours < 1 || hours > 24 * 365) {
    console.error('hours must be a whole number from 1 to 8760');
    process.exit(2);
  }
  const { token } = await createUserTokenSigner(secrets.userTokenKey)(subject, hours * 3600);
  console.log(token);
}
