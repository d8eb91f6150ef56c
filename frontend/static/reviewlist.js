// The reviewer's list: sessions, then a session's attempts with flag counts,
// result and review status, filtered.
import { loadDictionary, t, bi, h, biEl, span, fmtTime } from './i18n.js';

await loadDictionary();
const root = document.getElementById('reviewlist');

async function get(path) {
  const r = await fetch(path);
  const d = await r.json().catch(() => ({}));
  if (!r.ok) throw d;
  return d;
}

const filter = h('select', { id: 'filter' }, ...['', 'unreviewed', 'critical', 'terminated'].map((f) =>
  h('option', { value: f }, `${t(`review.filter.${f || 'all'}`).zh} ${t(`review.filter.${f || 'all'}`).en}`)));
const table = h('div', { id: 'attempts' });
let session = null;

async function showAttempts() {
  const { attempts } = await get(`/api/review/sessions/${session}/attempts?filter=${filter.value}`);
  table.replaceChildren(h('p', {}, h('a', { href: `/api/review/sessions/${session}/report.csv` }, `${t('review.report').zh} CSV`)), h('table', {},
    h('tr', {}, biEl('th', 'admin.results.ticket'), biEl('th', 'admin.results.name'), biEl('th', 'home.seat.room'), biEl('th', 'admin.session.attempts'),
      biEl('th', 'console.history'), biEl('th', 'admin.results.score'), biEl('th', 'review.decision')),
    ...attempts.map((a) => h('tr', {},
      h('td', { class: 'mono' }, h('a', { href: `/review/attempt?id=${a.attempt_id}`, 'data-attempt': a.attempt_id }, a.ticket)),
      h('td', {}, a.name), h('td', {}, a.room), h('td', {}, biEl('span', `status.${a.status}`)),
      h('td', {}, ...['critical', 'warning', 'info'].filter((s) => a.flags[s]).map((s) => h('span', { class: `badge sev-${s}` }, String(a.flags[s])))),
      h('td', {}, a.score ?? '—'),
      h('td', {}, a.decision ? biEl('span', `review.${a.decision}`) : biEl('span', 'review.pending', {}, { class: 'hint' }))))));
}

filter.onchange = showAttempts;
try {
  const { sessions } = await get('/api/review/sessions');
  root.replaceChildren(
    h('p', {}, ...sessions.map((s) => h('button', { type: 'button', onclick: () => { session = s.id; showAttempts(); } }, `${s.title} · ${fmtTime(s.starts_at)}`))),
    h('label', { class: 'inline' }, biEl('span', 'review.filter'), ' ', filter), table);
  if (sessions.length) { session = sessions[0].id; showAttempts(); }
} catch (e) {
  root.replaceChildren(h('div', { class: 'alert error' }, e.error ? `${e.error.message.zh} ${e.error.message.en}` : String(e)));
}
