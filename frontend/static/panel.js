// A panel member's page: the practical plans and review materials they
// assess. Each member scores alone; the others' scores show only once the
// whole panel has scored.
import { loadDictionary, t, h, biEl, fmtTime } from './i18n.js';
import { api } from './api.js';

await loadDictionary();
const root = document.getElementById('cert');

function failure(err) {
  const m = err && err.error ? err.error.message : { zh: String(err), en: '' };
  return h('div', { class: 'alert error', role: 'alert' }, `${m.zh} `, h('span', { class: 'en' }, m.en));
}

function item(s) {
  const msg = h('div');
  const parts = [
    h('h3', {}, biEl('span', `cert.component.${s.component}`), ` · ${s.candidate} · ${s.level}`),
    h('p', {}, s.file_name ? h('a', { href: `/api/cert/sittings/${s.sitting_id}/document`, 'data-doc': s.sitting_id }, s.file_name) : '—',
      ' ', h('span', { class: 'mono small' }, s.file_sha256 ? `sha256 ${s.file_sha256.slice(0, 16)}…` : '')),
    s.defence_at ? biEl('p', 'cert.defence', { at: fmtTime(s.defence_at) }) : '',
    biEl('p', 'cert.panel.progress', { scored: s.scored, members: s.members }, { 'data-progress': s.sitting_id }),
  ];
  if (s.passed == null) {
    const score = h('input', { type: 'number', min: 0, max: 100, step: '0.5', required: true, 'data-score-input': s.sitting_id, value: s.mine && s.mine.score != null ? s.mine.score : '' });
    const comment = h('textarea', { rows: 2, required: true, 'data-comment': s.sitting_id }, (s.mine && s.mine.comment) || '');
    const form = h('form', { class: 'grid-form', 'data-score-form': s.sitting_id },
      h('label', {}, biEl('span', 'cert.score'), score), h('label', {}, biEl('span', 'cert.panel.comment'), comment),
      biEl('button', s.mine && s.mine.scored ? 'cert.panel.change' : 'cert.panel.submit', {}, { type: 'submit', class: 'primary' }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api('POST', `/api/panel/${s.sitting_id}/score`, { score: Number(score.value), comment: comment.value });
        load();
      } catch (err) { msg.replaceChildren(failure(err)); }
    });
    const reason = h('input', { maxlength: 200, 'data-conflict-reason': s.sitting_id });
    const declare = biEl('button', 'cert.panel.declare', {}, { type: 'button' });
    declare.addEventListener('click', async () => {
      try { await api('POST', `/api/panel/${s.sitting_id}/conflict`, { reason: reason.value }); load(); } catch (err) { msg.replaceChildren(failure(err)); }
    });
    parts.push(form, h('div', { class: 'inline' }, biEl('span', 'cert.panel.conflict'), reason, declare));
  }
  if (s.mine && s.mine.scored) parts.push(biEl('p', 'cert.panel.mine', { score: s.mine.score }, { 'data-mine': s.sitting_id }));
  if (s.all_scored && s.scores) {
    parts.push(h('table', { 'data-scores': s.sitting_id }, h('tr', {}, biEl('th', 'cert.panel.member'), biEl('th', 'cert.score'), biEl('th', 'cert.panel.comment')),
      ...s.scores.map((p) => h('tr', {}, h('td', {}, p.name), h('td', {}, String(p.score)), h('td', {}, p.comment)))),
    biEl('p', 'cert.panel.result', { score: s.score, result: t(s.passed ? 'cert.state.passed' : 'cert.failed').zh }, { 'data-result': s.sitting_id }));
  } else {
    parts.push(biEl('p', 'cert.panel.hidden', {}, { class: 'hint' }));
  }
  parts.push(msg);
  return h('article', { class: 'cert-reg', 'data-sitting': s.sitting_id }, ...parts);
}

async function load() {
  try {
    const { sittings } = await api('GET', '/api/panel');
    root.replaceChildren(sittings.length ? '' : biEl('p', 'cert.panel.none'), ...sittings.map(item));
  } catch (err) {
    root.replaceChildren(failure(err));
  }
}
load();
