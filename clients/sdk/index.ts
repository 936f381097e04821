// The SDK for browsers and any runtime with fetch and Blob. Node programs that upload paths or
// streams import `clients/sdk/node.ts` instead: same API, more kinds of source.
import { serviceClientWith } from './service-client.ts';
import { prepareBrowserSource, type BrowserSource } from './source-browser.ts';
import { userSessionWith } from './user-session.ts';

export const createUserSession = userSessionWith<BrowserSource>(prepareBrowserSource);
export const createServiceClient = serviceClientWith(createUserSession);

export { StreamLineError, isStreamLineError, type StreamLineErrorCode } from './errors.ts';
export { errorMessage, isNoSuchRoute } from './messages.ts';
export type { BrowserSource } from './source-browser.ts';
export type { ServiceClient, ServiceClientOptions } from './service-client.ts';
export type { UserSession, UserSessionOptions, UploadStatus } from './user-session.ts';
export type { UploadOptions } from './upload.ts';
export type * from './types.ts';
