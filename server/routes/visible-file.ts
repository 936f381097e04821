// Which file records a request may see. A record is a file once it is 'ready': 'deleting' is on its
// way out, and a 'committing' record (a finish a crash cut, in a database of an earlier release;
// the start-up repair settles it, hooks/repair.ts) never had its bytes confirmed in place. The owner and the service token see
// it (caller.ts mayAccess); a signed link sees the one key its signature names. Anything else is
// answered 404, never 403: someone else's file is indistinguishable from none.
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';
import { mayAccess, type Caller } from '../auth/caller.ts';

/** Who asks: an authenticated caller, or whoever holds a link signed for this very key. */
export type Viewer = Caller | 'signed-link';

/** The record when it is ready and `viewer` may see it. */
export function visibleFile(viewer: Viewer, file: FileRow | undefined): FileRow | undefined {
  if (file?.state !== 'ready') return undefined;
  return viewer === 'signed-link' || mayAccess(viewer, file.user_id) ? file : undefined;
}

/** The ready file `viewer` may see; 404 otherwise. */
export function requireVisibleFile(viewer: Viewer, file: FileRow | undefined, message = 'no such file'): FileRow {
  const visible = visibleFile(viewer, file);
  if (!visible) throw new AppError('not_found', message);
  return visible;
}
