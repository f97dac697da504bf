/**
 * The gateway's log: one line per event, as JSON (`{"time","level","msg",...fields}`, for log
 * shippers) or pretty (`17:18:03.120 INFO  msg key=value`, for a terminal), at or above a level.
 * info and debug go to stdout, warn and error to stderr (as journald and `2>` expect).
 *
 * Why our own few lines and not pino: the gateway logs events (startup, auth failures, kicks,
 * failures) and, opt-in, one line per HTTP request — a synchronous `write` per line is enough, and
 * pino's worker-thread transports and its pretty printer (pino-pretty, another dozen packages) would
 * be most of the server's dependencies for no measured need.
 *
 * Rules: a field MUST NOT carry a token or a payload (clients are named by id, principal and
 * address). `logger` is process-wide: `configureLogger` sets it up once, at startup (the CLI);
 * in-process tests keep the default (info, pretty on a TTY else JSON).
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'pretty';
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const COLOR: Record<string, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where a line goes (tests capture it); default: stdout below warn, stderr from warn. */
  write?: (line: string, level: Exclude<LogLevel, 'silent'>) => void;
}

/** An Error as plain fields (name, message, code, stack); anything else as it is. */
function plain(v: unknown): unknown {
  if (!(v instanceof Error)) return v;
  const out: Record<string, unknown> = { name: v.name, message: v.message };
  const code = (v as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (v.stack) out.stack = v.stack;
  return out;
}

function pretty(v: unknown): string {
  if (v instanceof Error) return v.stack ?? `${v.name}: ${v.message}`;
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

const defaultWrite = (line: string, level: string) => {
  (RANK[level as LogLevel] >= RANK.warn ? process.stderr : process.stdout).write(line + '\n');
};

export class Logger {
  private rank: number;
  private format: LogFormat;
  private colors: boolean;
  private write: NonNullable<LoggerOptions['write']>;

  constructor(options: LoggerOptions) {
    this.rank = RANK[options.level];
    this.format = options.format;
    this.write = options.write ?? defaultWrite;
    this.colors = !options.write && process.stdout.isTTY === true && !process.env.NO_COLOR;
  }

  configure(options: LoggerOptions): void {
    this.rank = RANK[options.level];
    this.format = options.format;
    this.write = options.write ?? defaultWrite;
    this.colors = !options.write && process.stdout.isTTY === true && !process.env.NO_COLOR;
  }

  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return RANK[level] >= this.rank;
  }

  debug(msg: string, fields?: LogFields): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: LogFields): void { this.log('error', msg, fields); }

  log(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (RANK[level] < this.rank) return;
    const now = new Date();
    if (this.format === 'json') {
      const line: Record<string, unknown> = { time: now.toISOString(), level, msg };
      if (fields) for (const k in fields) if (fields[k] !== undefined) line[k] = plain(fields[k]);
      this.write(JSON.stringify(line), level);
      return;
    }
    let text = `${now.toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}`;
    if (this.colors) text = `${COLOR[level]}${text.slice(0, 18)}\x1b[0m${text.slice(18)}`;
    let stack = '';
    if (fields) {
      for (const k in fields) {
        const v = fields[k];
        if (v === undefined) continue;
        if (v instanceof Error) stack += `\n  ${pretty(v).replace(/\n/g, '\n  ')}`;
        else text += ` ${k}=${pretty(v)}`;
      }
    }
    this.write(text + stack, level);
  }
}

/** The format when none is asked for: pretty on a terminal, JSON lines otherwise. */
export function defaultLogFormat(): LogFormat {
  return process.stdout.isTTY ? 'pretty' : 'json';
}

/** The process's logger. */
export const logger = new Logger({ level: 'info', format: defaultLogFormat() });

export function configureLogger(options: LoggerOptions): void {
  logger.configure(options);
}
