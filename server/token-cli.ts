// `npm run token -- <user_id> [hours]` prints a user JWT signed with this server's own key, read
// from DATA_DIR/secrets.json (start the server once first). `npm run token -- --service` prints
// the service token. Output is the bare secret, so `TOKEN=$(npm run -s token -- alice)` works.
import { existsSync } from 'node:fs';
import { createUserTokenSigner } from './auth/jwt.ts';
import { loadSecrets, secretsPath } from './auth/secrets.ts';
import { loadConfig } from './config.ts';
import { isValidUserId } from './storage/keys.ts';

const [subject, hoursArg] = process.argv.slice(2);
const config = loadConfig(process.env);
if (!existsSync(secretsPath(config.dataDir))) {
  console.error(`no secrets in ${config.dataDir} yet: start the server once (node server/serve.mjs), then run this again`);
  process.exit(1);
}
const secrets = await loadSecrets(config.dataDir, { ...config, jwtAlgorithm: undefined });
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
