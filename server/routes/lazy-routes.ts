// Routes registered at start by method and path, whose handlers — validation, OpenAPI description
// and all — are imported on the first request that needs them. The JSON API's validation (zod) and
// handlers are ~4 MiB of heap and ~7 MiB of RSS at start that a server which only takes uploads
// would carry for nothing (bench/README.md, "Loading the JSON API on first use").
//
// The path a request matched is the stub's, registered with the same method and path as the
// handlers it stands for: the route label in the request log and metrics (routePath, in
// http/request-context.ts) and the path parameters are the same as if the handlers were registered
// themselves. The handlers run as a chain on the request's own context, as Hono runs a route's.
import { Hono, type Env, type MiddlewareHandler, type Next } from 'hono';
import type { RouterRoute } from 'hono/types';
import { findTargetHandler } from 'hono/utils/handler';
import { releaseStartupMemory } from '../startup-memory.ts';

/** A route of the registry: its method(s) and its path, said once for the stub and for the handlers. */
export interface RoutePath {
  readonly method: string | readonly string[];
  readonly path: string;
}

/** The handlers a stub stands for, once loaded (what describedRoutes puts in its place). */
const LOAD = Symbol('lazily loaded handlers');
type Stub<E extends Env> = MiddlewareHandler<E> & { [LOAD]: () => Promise<MiddlewareHandler<E>[]> };

/**
 * A router with one stub per method and path of `routes`. The first request to any of them imports
 * the handlers (`load` builds the router that holds them, registered with the same RoutePaths). A
 * load that fails reaches the app's error handler: a 500 problem+json and a log line with the
 * cause, for that request and every later one to these routes (Node keeps a failed import's error
 * until the process restarts); every other route goes on serving.
 */
export function lazyRoutes<E extends Env>(routes: readonly RoutePath[], load: () => Promise<Hono<E>>): Hono<E> {
  let loading: Promise<Hono<E>> | undefined;
  const loaded = (): Promise<Hono<E>> =>
    (loading ??= load().then((router) => {
      releaseAfterLoading();
      return router;
    }));
  const app = new Hono<E>();
  for (const route of routes) {
    for (const method of [route.method].flat().map((m) => m.toUpperCase())) {
      let handlers: MiddlewareHandler<E>[] | undefined;
      const resolve = async (): Promise<MiddlewareHandler<E>[]> => (handlers ??= handlersOf(await loaded(), method, route.path));
      const stub = (async (c, next) => runChain(c, handlers ?? (await resolve()), next)) as Stub<E>;
      stub[LOAD] = resolve;
      app.on(method, route.path, stub);
    }
  }
  return app;
}

/**
 * The app's routes with every stub replaced by the handlers it stands for, in their place: what
 * the app's routes would be had the handlers been registered at start (the OpenAPI document is
 * generated from them). Loads every lazily loaded router.
 */
export async function describedRoutes(app: Hono<any, any, any>): Promise<RouterRoute[]> {
  const routes: RouterRoute[] = [];
  for (const route of app.routes) {
    const target = findTargetHandler(route.handler) as Partial<Stub<Env>>;
    if (!target[LOAD]) {
      routes.push(route);
      continue;
    }
    for (const handler of await target[LOAD]()) routes.push({ ...route, handler });
  }
  return routes;
}

/**
 * Loading grows the young generation as start-up does (startup-memory.ts says why that stays
 * resident): it is handed back once, a moment after the last load, so that the loads of one page
 * of the web client (several routes at once) cost one collection.
 */
const RELEASE_AFTER_MS = 1000;
let release: NodeJS.Timeout | undefined;
function releaseAfterLoading(): void {
  clearTimeout(release);
  release = setTimeout(() => void releaseStartupMemory(), RELEASE_AFTER_MS).unref();
}

function handlersOf<E extends Env>(router: Hono<E>, method: string, path: string): MiddlewareHandler<E>[] {
  const handlers = router.routes.filter((r) => r.method === method && r.path === path).map((r) => r.handler as MiddlewareHandler<E>);
  if (handlers.length === 0) throw new Error(`the loaded routes have no ${method} ${path}`);
  return handlers;
}

/** As Hono's compose runs a route's handlers: each may answer, or call the next; an answer not yet given becomes the response. */
function runChain<E extends Env>(c: Parameters<MiddlewareHandler<E>>[0], handlers: MiddlewareHandler<E>[], next: Next): Promise<void> {
  const dispatch = async (i: number): Promise<void> => {
    const handler = handlers[i];
    if (!handler) return i === handlers.length ? next() : undefined;
    const answer = await handler(c, () => dispatch(i + 1));
    if (answer instanceof Response && !c.finalized) c.res = answer;
  };
  return dispatch(0);
}
