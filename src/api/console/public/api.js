// The console's one way to the API: the token the operator signed in with, kept for this browser
// session only (sessionStorage), sent as a bearer token. Errors come back as ApiError carrying the
// API's {error, message}, so a page can show the API's own words.
const TOKEN_KEY = 'caelum-console-token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `the API answered ${status}`);
    this.status = status;
    this.code = body?.error ?? 'error';
  }
}

/** Called when the API refuses the token (401): the app goes back to the sign-in form. */
let onUnauthorized = () => {};
export const whenUnauthorized = (fn) => {
  onUnauthorized = fn;
};

/** GET or POST an /api route (path relative to the API root, e.g. 'api/workers'). */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { authorization: `Bearer ${token.get() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  // The console is at /ui/: the API is one level up, wherever the API itself is mounted.
  const res = await fetch(`../${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401) onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** A query string from the defined entries of `params`. */
export const query = (params) =>
  new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
