// Two middlewares registered as one: `first`, then `second`, then the rest. Hono's compose keeps
// one suspended async frame per middleware it runs, for as long as the request lasts — an upload
// PATCH may stream for hours, and each frame is ~0.4 KiB per open request (bench/README.md,
// "Memory per held PATCH"). Only for a `first` that does nothing after next() and lets what it
// calls throw through: compose would otherwise have answered the error before `first` saw it.
import type { Env, MiddlewareHandler } from 'hono';

export function inSequence<E extends Env>(first: MiddlewareHandler<E>, second: MiddlewareHandler<E>): MiddlewareHandler<E> {
  return (c, next) => first(c, () => second(c, next) as Promise<void>);
}
