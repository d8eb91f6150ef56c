// The public certificate check: a number and the holder's name (or ID
// number); the QR code on a certificate brings its number and code.
import { loadDictionary, t, bi, h, biEl } from './i18n.js';

await loadDictionary();
const root = document.getElementById('cert');
const q = new URLSearchParams(location.search);
const number = h('input', { id: 'v-number', class: 'mono', required: true, maxlength: 64, value: q.get('number') || '' });
const name = h('input', { id: 'v-name', maxlength: 64 });
const idn = h('input', { id: 'v-id', maxlength: 18, class: 'mono' });
const out = h('div', { id: 'v-result', class: 'verify-result', 'aria-live': 'polite' });
const form = h('form', { id: 'verify', class: 'grid-form' },
  h('label', {}, biEl('span', 'cert.number'), number),
  h('label', {}, biEl('span', 'cert.name'), name),
  h('label', {}, biEl('span', 'cert.verify.or_id'), idn),
  biEl('button', 'cert.verify.submit', {}, { type: 'submit', class: 'primary' }));

async function check(code) {
  const p = new URLSearchParams({ number: number.value, name: name.value, id_number: idn.value });
  if (code) p.set('code', code);
  const r = await fetch(`/api/verify?${p}`);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const m = data.error ? data.error.message : { zh: r.statusText, en: '' };
    const key = r.status === 404 ? t('cert.verify.none') : m;
    out.replaceChildren(h('div', { class: 'alert error', role: 'alert', 'data-verify': r.status === 404 ? 'none' : 'error' }, `${key.zh} `, h('span', { class: 'en' }, key.en)));
    return;
  }
  const c = data.certificate;
  const row = (k, v, attrs = {}) => h('tr', {}, biEl('th', k), h('td', attrs, v));
  out.replaceChildren(h('table', { 'data-verify': c.status },
    row('cert.number', c.number, { class: 'mono' }),
    row('cert.name', c.name, { id: 'v-holder' }),
    row('cert.programme', `${c.programme_zh} / ${c.programme_en}`),
    row('cert.level', `${c.level_zh} / ${c.level_en}`),
    row('cert.issued', c.issued_on),
    row('cert.status', biEl('span', `cert.status.${c.status}`, {}, { class: `status-${c.status}`, id: 'v-status' }))));
}

form.addEventListener('submit', (ev) => { ev.preventDefault(); check(); });
root.replaceChildren(biEl('p', 'cert.verify.hint', {}, { class: 'hint' }), form, out);
if (q.get('number') && q.get('code')) check(q.get('code'));
