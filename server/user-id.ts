// A user id (a user token's `sub`, or the `user_id` the service token names) becomes a folder of
// every key that user's files get (server/storage/keys.ts), so it is held to one rule wherever it
// comes in: letters, digits and `._-`, 1 to 128 of them, and never `.` or `..`.
const USER_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function isValidUserId(value: string): boolean {
  return USER_ID.test(value) && value !== '.' && value !== '..';
}
