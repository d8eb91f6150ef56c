// The candidate's home: their exams, and a mock test any time.
import { loadDictionary, t, bi, h, biEl, csrfToken, fmtTime } from './i18n.js';

await loadDictionary();
const box = document.getElementById('attempts');

async function load() {
  const r = await fetch('/api/attempts');
  if (!r.ok) {
    const e = await r.json().catch(() => ({}));
    box.replaceChildren(h('div', { class: 'alert error', role: 'alert' }, e.error ? `${e.error.message.zh} ${e.error.message.en}` : r.statusText));
    return;
  }
  const { attempts } = await r.json();
  const rows = attempts.map((a) => {
    const open = a.status === 'not_started' || a.status === 'in_progress';
    const action = open
      ? h('span', {}, biEl('a', a.status === 'in_progress' ? 'cand.continue' : 'cand.enter', {}, { class: 'button primary', href: `/exam?attempt=${a.id}`, 'data-attempt': a.id }),
        ' ', biEl('a', 'cand.check', {}, { class: 'button', href: `/check?attempt=${a.id}`, 'data-check': a.id }))
      : (a.kind === 'mock' && a.score != null ? h('span', {}, String(a.score)) : h('span'));
    return h('tr', {},
      h('td', {}, biEl('div', `cand.kind.${a.kind}`), h('div', {}, a.title_zh), h('div', { class: 'en' }, a.title_en)),
      h('td', {}, a.opens_at ? fmtTime(a.opens_at) : '—'),
      h('td', {}, biEl('span', `status.${a.status}`)),
      h('td', {}, action));
  });
  const head = h('tr', {}, biEl('th', 'cand.attempts'), biEl('th', 'cand.opens'), biEl('th', 'home.seat.time'), h('th'));
  box.replaceChildren(rows.length ? h('table', {}, head, ...rows) : biEl('p', 'cand.none'));
}

const mockBtn = document.getElementById('mock');
bi(mockBtn, 'cand.mock');
bi(document.getElementById('mock-hint'), 'cand.mock.hint');
mockBtn.addEventListener('click', async () => {
  mockBtn.disabled = true;
  const r = await fetch('/api/mock', { method: 'POST', headers: { 'X-CSRF-Token': csrfToken() } });
  if (r.ok) {
    const { attempt_id } = await r.json();
    location.href = `/exam?attempt=${attempt_id}`;
  } else {
    mockBtn.disabled = false;
    const e = await r.json().catch(() => ({}));
    alert(e.error ? `${e.error.message.zh}\n${e.error.message.en}` : r.statusText);
  }
});
load();
