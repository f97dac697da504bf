/** @sluice/server — embed the gateway: `startServer(loadConfig([], process.env))`. */
export { startServer, openStore, authFromConfig, VERSION, type RunningServer } from './server.js';
export {
  loadConfig, defaultConfig, DEFAULT_LIMITS, DEFAULT_HTTP_LIMITS, DEFAULT_HUB_CONFIG, DEFAULT_READ_POLICY, ConfigError,
  type Config, type Limits, type AuthConfig, type HttpLimits, type RateLimits, type HubConfig,
} from './config.js';
export type { TopicLog, TopicInfo, AppendInput, AppendResult, ReadResult, Retention } from './log/log.js';
export { MemoryLog } from './log/memory.js';
export { DiskLog } from './log/disk.js';
export type { Authenticator, Principal, Action } from './auth/auth.js';
export type { Nodes, NodeRow, NodeFigures } from './cluster/nodes.js';
export { JwtAuthenticator } from './auth/jwt.js';
