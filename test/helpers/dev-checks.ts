// The development checks (STREAMLINE_DEV_CHECKS, server/db/sqlite-gate.ts) are read when a SQLite
// connection's gate is made: `make` opens what it opens with them on or off, whatever the
// environment of the test run says, so a test can cover both the checked path and production's.
export function withDevChecks<T>(on: boolean, make: () => T): T {
  const before = process.env.STREAMLINE_DEV_CHECKS;
  process.env.STREAMLINE_DEV_CHECKS = on ? '1' : '0';
  try {
    return make();
  } finally {
    if (before === undefined) delete process.env.STREAMLINE_DEV_CHECKS;
    else process.env.STREAMLINE_DEV_CHECKS = before;
  }
}
