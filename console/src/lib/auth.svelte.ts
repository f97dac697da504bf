/**
 * The console's admin token. Kept in localStorage so a reload stays signed in; `mode` is what the
 * gateway said about itself ('dev' needs no token). `needed` flips to true on a 401 anywhere.
 */
const KEY = 'sluice.console.token';

class Auth {
  token = $state<string>(readToken());
  mode = $state<'unknown' | 'dev' | 'jwt'>('unknown');
  needed = $state(false);

  signIn(token: string): void {
    this.token = token.trim();
    this.needed = false;
    try { localStorage.setItem(KEY, this.token); } catch { /* storage unavailable */ }
  }

  signOut(): void {
    this.token = '';
    try { localStorage.removeItem(KEY); } catch { /* storage unavailable */ }
  }
}

function readToken(): string {
  try { return localStorage.getItem(KEY) ?? ''; } catch { return ''; }
}

export const auth = new Auth();
