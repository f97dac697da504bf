/** @sluice/server — embed the gateway: `startServer(loadConfig([], process.env))`. */
export { startServer, openStore, VERSION, type RunningServer } from './server.js';
export { loadConfig, defaultConfig, DEFAULT_LIMITS, ConfigError, type Config, type Limits } from './config.js';
export type { TopicLog, TopicInfo, AppendInput, AppendResult, ReadResult, Retention } from './log/log.js';
export { MemoryLog } from './log/memory.js';
export { DiskLog } from './log/disk.js';
export type { Authenticator, Principal, Action } from './auth/auth.js';
