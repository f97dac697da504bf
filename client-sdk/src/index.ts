/**
 * @sluice/client — the Sluice SDK for browsers, Node and edge runtimes.
 * Every public export is named here; anything else is internal. The wire protocol is the
 * separate entry point `@sluice/client/protocol`.
 */
export { createClient, Client, wsUrl } from './client.js';
export type { ClientOptions, ClientState, ClientEvents, StateChange, PublishOptions, PublishResult, ServerInfo, LogEvent, PrepareOptions, Transaction, RequestOptions } from './client.js';
export type { HistoryOptions, HistoryPage } from './history.js';
export { Subscription } from './subscription.js';
export type {
  Message,
  MessageHandler,
  SubscribeOptions,
  SubscriptionState,
  SubscriptionEvents,
  SubscriptionStateChange,
  SubscribedEvent,
  GapEvent,
} from './subscription.js';
export { Consumer } from './consumer.js';
export type {
  ConsumerMessage,
  ConsumeHandler,
  ConsumeOptions,
  NackOptions,
  ConsumerState,
  ConsumerStateChange,
  ConsumerEvents,
  LostEvent,
} from './consumer.js';
export { createPublisher } from './publisher.js';
export type { Publisher, PublisherOptions, HttpPublishResult, HttpPublishOptions, HttpScheduled, HttpTransaction, BatchMessage, BatchResult } from './publisher.js';
export { memoryResume, webStorageResume } from './resume.js';
export type { ResumeStore, Position, StorageLike } from './resume.js';
export { SluiceError, ServerError, ClosedError, QueueFullError, NetworkError, ConnectionError, TimeoutError, SuspendedError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { fullJitter } from './backoff.js';
export type { Backoff, BackoffOptions, Clock } from './backoff.js';
export type { WebSocketConstructor, WebSocketLike, Transport, TransportFactory, TransportHandlers } from './transport.js';
export { ErrorCodes, CloseCode, closePolicy } from './protocol/codes.js';
export type { ErrorCode } from './protocol/codes.js';
export type { Headers } from './protocol/frames.js';
