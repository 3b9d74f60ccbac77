// REST access with the operator's token. The token is kept in localStorage and in the citybrain_token cookie
// (SameSite=Strict) so that the websocket, which cannot carry an Authorization header from a browser, is
// authenticated by the same token.
const KEY = 'citybrain_token';

export const session = { token: localStorage.getItem(KEY) || '', who: null, leaving: false };

export function setToken(t) {
  session.token = t;
  localStorage.setItem(KEY, t);
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `citybrain_token=${encodeURIComponent(t)}; Path=/; SameSite=Strict${secure}`;
}

export function clearToken() {
  session.token = '';
  session.who = null;
  localStorage.removeItem(KEY);
  document.cookie = 'citybrain_token=; Path=/; Max-Age=0; SameSite=Strict';
}

// signOut forgets the token and reloads the page to the sign-in screen. Until the old page is gone its timers
// keep firing; their requests are held (never sent) rather than sent without a token, which the server rightly
// refuses with a 401 each.
export function signOut() {
  session.leaving = true;
  clearToken();
  location.reload();
}

export class HTTPError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

export async function api(path, { method = 'GET', body, signal, token = session.token } = {}) {
  if (session.leaving) return new Promise(() => {}); // signing out: the page is going away
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, signal, cache: 'no-store', credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text.trim() }; }
  if (!r.ok) throw new HTTPError(r.status, (data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

// whoami asks the server who a token belongs to: {authenticated, name, role, auth_configured}.
export function whoami(token = session.token) {
  return api('/api/v1/whoami', { token });
}

// Operator permissions by role. The server decides (403 otherwise); this only greys out what a role cannot do.
// When whoami carries a "can" list, it wins.
const CAN = {
  'incident.update': ['commander', 'admin'], // POST /api/v1/incidents/{id}
  'incident.dispatch': ['commander', 'admin'], // POST /api/v1/dispatch
  'replay.control': ['planner', 'admin'], // POST /api/v1/replays/{id}/{action}
};

export function can(action) {
  const w = session.who;
  if (!w || !w.authenticated) return false;
  if (Array.isArray(w.can)) return w.can.includes(action);
  return (CAN[action] || []).includes(w.role);
}
