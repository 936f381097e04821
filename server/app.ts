// createApp: middleware, routes, the tus mount and error handling. No I/O of its own: everything
// it touches arrives in `services` (server/services.ts).
import { Hono } from 'hono';
import { requireCaller, type AuthEnv } from './auth/caller.ts';
import type { HttpBindings } from '@hono/node-server';
import { AppError, problemResponse } from './errors.ts';
import { errorAnswer } from './error-answer.ts';
import { boundedBodies } from './http/body-limit.ts';
import { corsFor } from './http/cors.ts';
import { cookieOriginCheck, cookieOriginRule } from './http/cross-origin.ts';
import { inSequence } from './http/in-sequence.ts';
import type { Drain } from './http/drain.ts';
import type { TokenBuckets } from './http/rate-limit.ts';
import { authFailureLimit, authFailureRule, downloadLimit, type AuthFailureRule } from './http/rate-limit-middleware.ts';
import { requestContext, requestTracker, type RequestEnv, type TrackRequest } from './http/request-context.ts';
import { DOCS_POLICY, securityHeaders } from './http/security-headers.ts';
import { readRestAfterAnswer, type UnreadBodyOptions } from './http/unread-body.ts';
import { docsRoute } from './api-docs/docs-route.ts';
import type { Metrics } from './metrics.ts';
import { metricsRoute } from './metrics-route.ts';
import { batchDownloadRoute, batchTokenRoute, type BatchDeps } from './routes/batch-download.ts';
import { fileRoutes } from './routes/files.ts';
import { healthRoute } from './routes/health.ts';
import { signedGetRoute, signedUrlRoute, type SignedLinkDeps } from './routes/signed-links.ts';
import { jwksRoute, tokenRoutes } from './routes/tokens.ts';
import { LEGACY_UPLOAD_PATHS } from './routes/api-route-paths.ts';
import { legacyUploadRoutes } from './routes/legacy-uploads.ts';
import { uploadRoutes, type UploadRouteDeps } from './routes/uploads.ts';
import { webPageRoute } from './routes/web-page.ts';
import type { Services } from './services.ts';
import { createDamageReporter } from './storage/damage.ts';
import { TUS_PATH } from './tus.ts';
import { uploadFastPath } from './upload-fast-path.ts';

/** Version of the HTTP API described at /docs/openapi.json. */
const API_VERSION = '1.0.0';

/** What the production edge adds around the routes: observation, shutdown drain, rate limits. */
export interface EdgeDeps {
  metrics: Metrics;
  drain: Drain;
  limits: { downloadPerClient: TokenBuckets; downloadPerLink: TokenBuckets; authFailure: TokenBuckets };
}

/** What the Hono app and the upload fast path (server/upload-fast-path.ts) both apply. */
interface SharedRules {
  track: TrackRequest;
  cors: ReturnType<typeof corsFor>;
  readRest: UnreadBodyOptions;
  originRule: (request: Request) => void;
  authFailure: AuthFailureRule;
  uploads: UploadRouteDeps;
}

function sharedRules(services: Services, edge: EdgeDeps): SharedRules {
  const { config, log } = services;
  return {
    track: requestTracker({ log, metrics: edge.metrics, drain: edge.drain, edgeSecret: config.edgeSecret, trustedProxies: config.trustedProxies }),
    cors: corsFor(config.corsOrigins),
    readRest: { idleTimeoutMs: config.uploadIdleTimeoutSeconds * 1000, drain: edge.drain },
    originRule: cookieOriginRule({ cookieName: config.cookieName, corsOrigins: config.corsOrigins, publicUrl: services.publicUrl }),
    authFailure: authFailureRule({ buckets: edge.limits.authFailure, metrics: edge.metrics }),
    uploads: { uploads: services.uploads, repo: services.repo, auth: services.auth, log },
  };
}

/** The `fetch` @hono/node-server calls: tus requests through the fast path unless `fastPath` is false, the rest through Hono. */
export function createFetch(services: Services, edge: EdgeDeps, options: { fastPath?: boolean } = {}): (request: Request, env?: unknown) => Response | Promise<Response> {
  const rules = sharedRules(services, edge);
  const app = createApp(services, edge, rules);
  // CORS rebuilds every answer in Hono's middleware: with it configured, Hono answers uploads too.
  if (options.fastPath === false || rules.cors) return app.fetch;
  const fast = uploadFastPath({ ...rules, route: rules.uploads, log: services.log, getPath: (request) => app.getPath(request) });
  // The server speaks HTTP/1.1 (node:http): its bindings are HttpBindings.
  return (request, env) => fast(request, env as HttpBindings | undefined) ?? app.fetch(request, env);
}

export function createApp(services: Services, edge: EdgeDeps, rules: SharedRules = sharedRules(services, edge)): Hono<RequestEnv> {
  const { config, log } = services;
  const app = new Hono<RequestEnv>();
  app.use('*', requestContext(rules.track));
  const cors = rules.cors;
  if (cors) app.use('*', cors);
  app.use('*', boundedBodies({ maxBytes: config.bodyLimitBytes, exceptUnder: [TUS_PATH, ...LEGACY_UPLOAD_PATHS] }));
  // Upload bodies are not bounded: one answered before it was read is read to its end after.
  const readRest = readRestAfterAnswer(rules.readRest);
  for (const path of [`${TUS_PATH}/*`, ...LEGACY_UPLOAD_PATHS]) app.use(path, readRest);
  app.use('/docs', securityHeaders(DOCS_POLICY));
  app.use('/docs/*', securityHeaders(DOCS_POLICY));

  const downloads = downloadLimit({ perClient: edge.limits.downloadPerClient, perLink: edge.limits.downloadPerLink, metrics: edge.metrics });
  app.use('/get/*', downloads);
  app.use('/v1/files/batch-download/*', downloads);
  // One registration for both (server/http/in-sequence.ts). The origin check runs after the
  // download limit on batch downloads: it passes their GETs, which are all that limit counts.
  app.use('/v1/*', inSequence(cookieOriginCheck(rules.originRule), authFailureLimit(rules.authFailure)));

  app.route(TUS_PATH, uploadRoutes(rules.uploads));

  const links: SignedLinkDeps = {
    repo: services.repo,
    storage: services.storage,
    signingKeys: services.signingKeys,
    defaultTtlSeconds: config.signedUrlTtlSeconds,
    publicUrl: services.publicUrl,
    now: services.now,
    offload: services.storage.kind === 'file' && config.edgeSecret !== undefined && config.edgeOffload,
    scanning: config.clamd !== undefined,
    damage: createDamageReporter({ repo: services.repo, metrics: edge.metrics, log, now: services.now }),
  };
  app.route('/get', signedGetRoute(links));
  // Registered before the authenticated /v1 tree: whoever holds the link needs no account.
  const batch: BatchDeps = { ...links, ttlSeconds: config.signedUrlTtlSeconds };
  app.route('/v1/files/batch-download', batchDownloadRoute(batch));

  const api = new Hono<AuthEnv>();
  api.use('*', requireCaller(services.auth));
  api.route('/', tokenRoutes(services.signUserToken));
  api.route('/', signedUrlRoute(links));
  api.route('/', batchTokenRoute(batch));
  api.route('/', legacyUploadRoutes(services, (request) => app.fetch(request)));
  api.route('/', fileRoutes({ repo: services.repo, quotaBytes: config.quotaBytes, deleteFile: services.lifecycle.deleteFile }));
  app.route('/v1', api);

  app.route('/.well-known', jwksRoute(services.ownKeys));
  app.route('/', webPageRoute());
  app.route('/metrics', metricsRoute(edge.metrics, config.metricsToken));
  // The OpenAPI document is generated from this app's own routes (their describeRoute/validator).
  app.route('/docs', docsRoute(() => app, API_VERSION));
  app.route('/healthz', healthRoute({ dataDir: config.dataDir, repo: services.repo, storage: services.storage, scan: services.scanWorker, log }));

  app.notFound(() => problemResponse(new AppError('not_found', 'no such route')));
  app.onError((error, c) => errorAnswer(log, error, c.req.method, c.req.path, c.get('requestId'), c.res.headers));
  return app;
}
