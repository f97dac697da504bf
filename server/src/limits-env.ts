/**
 * Process-wide limits uWebSockets.js reads from the environment once, when it loads: this module
 * MUST be imported before anything that imports uWS (cli.ts imports it first).
 *
 * Request headers: uWS answers 431 with an HTML page above 4 KiB of headers by default, before the
 * gateway sees the request — a large Bearer token would never get a JSON answer. 16 KiB lets tokens
 * of ~15 KB through; set UWS_HTTP_MAX_HEADERS_SIZE yourself to choose another limit.
 */
process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(16 * 1024);
