// The SDK for Node: the browser API, and uploads from a path, a Buffer or a stream.
import { serviceClientWith } from './service-client.ts';
import { prepareNodeSource, type NodeSource } from './source-node.ts';
import { userSessionWith } from './user-session.ts';

export const createUserSession = userSessionWith<NodeSource>(prepareNodeSource);
export const createServiceClient = serviceClientWith(createUserSession);

export { StreamLineError, isStreamLineError, type StreamLineErrorCode } from './errors.ts';
export { errorMessage, isNoSuchRoute } from './messages.ts';
export type { NodeSource } from './source-node.ts';
export type { ServiceClient, ServiceClientOptions } from './service-client.ts';
export type { UserSession, UserSessionOptions, UploadStatus } from './user-session.ts';
export type { UploadOptions } from './upload.ts';
export type * from './types.ts';
