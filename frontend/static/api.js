// A JSON call to the API with the page's CSRF token; a failed call throws
// the server's {error} reply.
import { csrfToken } from './i18n.js';

export async function api(method, path, body, raw) {
  const opts = { method, headers: { 'X-CSRF-Token': csrfToken() } };
  if (body !== undefined) {
    opts.body = raw ? body : JSON.stringify(body);
    if (!raw) opts.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw data;
  return data;
}
