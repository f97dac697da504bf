/**
 * Token expiry: a connection or stream authenticated by a token that expires ends then, and the
 * client comes back with a fresh token. One timer per authenticated connection, never keeping the
 * process alive; tokens valid for longer than setTimeout's range (2^31−1 ms, ~24.8 days) re-arm.
 */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Calls `fire` once `expiresAt` (ms since the epoch) has passed; returns a function that cancels it. */
export function atExpiry(expiresAt: number, fire: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const ms = expiresAt - Date.now();
    if (ms <= 0) {
      timer = undefined;
      fire();
      return;
    }
    timer = setTimeout(arm, Math.min(ms, MAX_TIMEOUT_MS));
    timer.unref?.();
  };
  arm();
  return () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}
