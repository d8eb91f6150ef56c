// The admin's exam pages: sessions and results, blueprints and clock rules,
// the question bank, and key corrections. Every action goes through the
// admin API; its errors are shown as the server words them.
import { loadDictionary, t, bi, h, biEl, csrfToken, fmtTime } from './i18n.js';
import { api } from './api.js';

await loadDictionary();
const root = document.getElementById('admin');


// note shows a result or an error (with an import's invalid lines) under a form.
function note(el, key, vars, err) {
  el.replaceChildren();
  if (err) {
    const m = err.error ? err.error.message : { zh: String(err), en: '' };
    el.append(h('div', { class: 'alert error', role: 'alert' }, `${m.zh} `, h('span', { class: 'en' }, m.en)));
    if (err.lines) {
      el.append(h('table', { class: 'lines' },
        h('tr', {}, biEl('th', 'admin.bank.line'), biEl('th', 'admin.bank.field'), biEl('th', 'admin.bank.reason')),
        ...err.lines.map((l) => h('tr', {}, h('td', {}, String(l.line)), h('td', {}, l.field), h('td', {}, l.reason)))));
    }
    return;
  }
  el.append(biEl('div', key, vars, { class: 'alert notice', role: 'status' }));
}

function section(key, ...children) {
  return h('section', { class: 'block' }, biEl('h2', key), ...children);
}

// ---- sessions ---------------------------------------------------------------

async function sessions(exams) {
  const { sessions } = await api('GET', '/api/admin/sessions');
  const out = h('div');
  const rows = sessions.map((s) => {
    const msg = h('div');
    const counts = Object.entries(s.attempts).map(([k, n]) => h('div', {}, biEl('span', `status.${k}`), `: ${n}`));
    const detail = h('div');
    return [h('tr', {},
      h('td', {}, h('strong', {}, s.title), h('div', { class: 'hint' }, s.code)),
      h('td', {}, fmtTime(s.starts_at), h('div', { class: 'hint' }, fmtTime(s.admission_ends_at)), h('div', { class: 'hint' }, fmtTime(s.ends_at)),
        modeSelect(s.admission_mode, async (mode) => {
          try { await api('PUT', `/api/admin/sessions/${s.id}/admission`, { mode }); note(msg, 'admin.session.mode.saved'); } catch (e) { note(msg, '', {}, e); }
        }, { 'data-mode': s.id })),
      h('td', {}, String(s.seats), biEl('div', 'admin.session.storage', { gb: (s.storage_estimate_bytes / 1e9).toFixed(1) }, { class: 'hint', 'data-storage': s.id })),
      h('td', {}, ...counts),
      h('td', { class: 'actions' },
        biEl('button', 'admin.session.schedule', {}, { type: 'button', onclick: async () => {
          try { const r = await api('POST', `/api/admin/sessions/${s.id}/schedule`); note(msg, 'admin.session.scheduled', { n: r.papers }); } catch (e) { note(msg, '', {}, e); }
        } }),
        biEl('button', 'admin.session.results', {}, { type: 'button', onclick: () => results(s.id, detail) }),
        biEl('button', 'admin.session.stats', {}, { type: 'button', onclick: () => stats(s.id, detail) }),
        biEl('button', 'admin.session.notify', {}, { type: 'button', 'data-notify': s.id, onclick: async () => {
          const c = t('admin.session.notify.confirm', { n: s.seats });
          if (!confirm(`${c.zh}\n${c.en}`)) return;
          try { const r = await api('POST', `/api/admin/sessions/${s.id}/notify-seats`); followBatch(r.batch, r.queued, msg); } catch (e) { note(msg, '', {}, e); }
        } }),
        h('div', {}, biEl('a', 'admin.session.csv', {}, { href: `/api/admin/sessions/${s.id}/results?format=csv` }), ' · ',
          biEl('a', 'admin.session.stats', {}, { href: `/api/admin/sessions/${s.id}/stats?format=csv` })),
        msg)),
    h('tr', {}, h('td', { colspan: 5 }, detail))];
  });
  out.append(h('table', {},
    h('tr', {}, biEl('th', 'admin.session.title'), biEl('th', 'admin.session.starts'), biEl('th', 'admin.session.seats'), biEl('th', 'admin.session.attempts'), h('th')),
    ...rows.flat()));

  // New session.
  const f = {
    exam: h('select', { id: 'new-exam' }, ...exams.map((e) => h('option', { value: e.id }, `${e.title_zh} (${e.code})`))),
    code: h('input', { id: 'new-code', required: true }),
    title: h('input', { id: 'new-title', required: true }),
    starts: h('input', { id: 'new-starts', type: 'datetime-local', required: true }),
    admission: h('input', { id: 'new-admission', type: 'datetime-local', required: true }),
    ends: h('input', { id: 'new-ends', type: 'datetime-local', required: true }),
    mode: modeSelect('manual', null, { id: 'new-mode' }),
  };
  const msg = h('div');
  const iso = (v) => (v ? new Date(v).toISOString() : '');
  const form = h('form', { class: 'grid-form', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/admin/sessions', { exam_id: Number(f.exam.value), code: f.code.value, title: f.title.value,
        starts_at: iso(f.starts.value), admission_ends_at: iso(f.admission.value), ends_at: iso(f.ends.value), admission_mode: f.mode.value });
      note(msg, 'admin.session.created');
      render();
    } catch (e) { note(msg, '', {}, e); }
  } },
  label('admin.session.exam', f.exam), label('admin.session.code', f.code), label('admin.session.title', f.title),
  label('admin.session.starts', f.starts), label('admin.session.admission', f.admission), label('admin.session.ends', f.ends),
  label('admin.session.mode', f.mode),
  biEl('button', 'admin.create', {}, { type: 'submit', class: 'primary' }));
  out.append(h('details', {}, h('summary', {}, biEl('span', 'admin.session.create')), form, msg));
  return section('admin.sessions', out);
}

// modeSelect chooses how a session's candidates are admitted.
function modeSelect(value, onchange, attrs = {}) {
  const sel = h('select', { ...attrs, onchange: onchange && (() => onchange(sel.value)) },
    ...['manual', 'auto', 'open'].map((m) => h('option', { value: m }, `${t(`admin.session.mode.${m}`).zh} ${t(`admin.session.mode.${m}`).en}`)));
  sel.value = value;
  return sel;
}

function label(key, input) {
  return h('label', {}, biEl('span', key), input);
}

async function results(id, el) {
  const { results } = await api('GET', `/api/admin/sessions/${id}/results`);
  el.replaceChildren(h('table', {},
    h('tr', {}, biEl('th', 'admin.results.ticket'), biEl('th', 'admin.results.name'), biEl('th', 'home.seat.room'), biEl('th', 'admin.session.attempts'), biEl('th', 'admin.results.score'), biEl('th', 'admin.results.passed'), biEl('th', 'console.pre.photo')),
    ...results.map((r) => h('tr', {}, h('td', { class: 'mono' }, r.ticket), h('td', {}, r.name), h('td', {}, r.room),
      h('td', {}, biEl('span', `status.${r.status}`)), h('td', {}, r.score ?? '—'),
      h('td', {}, r.passed == null ? '—' : biEl('span', r.passed ? 'admin.yes' : 'admin.no')),
      h('td', {}, photoCell(r))))));
}

// photoCell files a candidate's registered photo (a JPEG), which the
// invigilator sees beside the identity still before the exam.
function photoCell(r) {
  const note = r.photo ? biEl('span', 'admin.photo.on_file') : biEl('span', 'console.pre.nophoto', {}, { class: 'hint' });
  const input = h('input', { type: 'file', accept: 'image/jpeg', 'data-photo': r.candidate_id });
  input.onchange = async () => {
    const f = input.files[0];
    if (!f) return;
    const res = await fetch(`/api/admin/users/${r.candidate_id}/photo`, { method: 'PUT', headers: { 'X-CSRF-Token': csrfToken(), 'Content-Type': 'image/jpeg' }, body: f });
    const body = await res.json().catch(() => ({}));
    if (res.ok) bi(note, 'admin.photo.on_file');
    else bi(note, body.error ? body.error.message : { zh: res.statusText, en: '' });
  };
  return h('div', {}, note, input);
}

async function stats(id, el) {
  const { questions } = await api('GET', `/api/admin/sessions/${id}/stats`);
  el.replaceChildren(h('table', {},
    h('tr', {}, biEl('th', 'admin.key.question'), biEl('th', 'admin.exam.kind'), h('th', {}, ''), biEl('th', 'admin.stats.avg'), biEl('th', 'admin.stats.facility')),
    ...questions.map((q) => h('tr', {}, h('td', {}, String(q.question_id)), biEl('td', `exam.kind.${q.kind}`), h('td', {}, q.stem),
      h('td', {}, String(q.avg_points)), h('td', {}, `${Math.round(q.facility * 100)}%`)))));
}

// ---- exams ------------------------------------------------------------------

function examEditor(ex) {
  const msg = h('div');
  const secs = (ex.blueprint?.sections || []).map((s) => ({ ...s }));
  const total = h('p', {});
  const sum = () => bi(total, 'admin.exam.total', { total: Math.round(secs.reduce((a, s) => a + s.count * s.points, 0) * 100) / 100 });
  const num = (v, on) => h('input', { type: 'number', min: 0, step: 'any', value: v, class: 'num', oninput: (ev) => { on(Number(ev.target.value)); sum(); } });
  const rows = secs.map((s) => h('tr', {},
    h('td', {}, s.title_zh || '', ' ', h('span', { class: 'en' }, s.title_en || '')), biEl('td', `exam.kind.${s.kind}`),
    h('td', {}, num(s.count, (v) => { s.count = v; })), h('td', {}, num(s.points, (v) => { s.points = v; }))));
  const pol = ex.policy || {};
  const grace = h('input', { type: 'number', min: 0, max: 3600, value: pol.grace_seconds ?? 5, class: 'num' });
  const credit = h('input', { type: 'number', min: 0, max: 3600, value: pol.outage_credit_cap_seconds ?? 300, class: 'num' });
  const minOut = h('input', { type: 'number', min: 0, max: 3600, value: pol.min_outage_seconds ?? 5, class: 'num' });
  const pcKbps = h('input', { type: 'number', min: 100, max: 2000, value: pol.pc_max_kbps ?? 300, class: 'num' });
  const phoneKbps = h('input', { type: 'number', min: 100, max: 2000, value: pol.phone_max_kbps ?? 200, class: 'num' });
  sum();
  return h('div', { class: 'exam-edit' },
    h('h3', {}, `${ex.title_zh} `, h('span', { class: 'en' }, ex.title_en), h('span', { class: 'hint' }, ` ${ex.code} · ${ex.duration_minutes} min`)),
    h('table', {}, h('tr', {}, biEl('th', 'admin.exam.section'), biEl('th', 'admin.exam.kind'), biEl('th', 'admin.exam.count'), biEl('th', 'admin.exam.points')), ...rows),
    total,
    h('div', { class: 'grid-form' }, label('admin.exam.grace', grace), label('admin.exam.credit', credit), label('admin.exam.minoutage', minOut),
      label('admin.exam.pckbps', pcKbps), label('admin.exam.phonekbps', phoneKbps)),
    biEl('p', 'admin.exam.note', {}, { class: 'hint' }),
    biEl('button', 'admin.save', {}, { type: 'button', class: 'primary', onclick: async () => {
      try {
        await api('PUT', `/api/admin/exams/${ex.id}`, { blueprint: { sections: secs }, policy: {
          grace_seconds: Number(grace.value), outage_credit_cap_seconds: Number(credit.value), min_outage_seconds: Number(minOut.value),
          pc_max_kbps: Number(pcKbps.value), phone_max_kbps: Number(phoneKbps.value) } });
        note(msg, 'admin.saved');
      } catch (e) { note(msg, '', {}, e); }
    } }),
    msg);
}

// ---- bank -------------------------------------------------------------------

function bank(programmes) {
  return section('admin.bank', imageUpload(), ...programmes.map((p) => {
    const msg = h('div');
    const file = h('input', { type: 'file', accept: '.csv,.json,text/csv,application/json' });
    return h('div', { class: 'bank' },
      h('h3', {}, `${p.name_zh} `, h('span', { class: 'en' }, p.name_en), ' · ', biEl('span', 'admin.bank.count', { n: p.questions }),
        ' · ', biEl('span', 'admin.bank.practice', { n: p.practice })),
      h('p', {}, biEl('span', 'admin.bank.export'), ': ',
        h('a', { href: `/api/admin/programmes/${p.id}/questions?format=csv` }, 'CSV'), ' · ',
        h('a', { href: `/api/admin/programmes/${p.id}/questions?format=json` }, 'JSON')),
      poolForm(),
      label('admin.bank.import', file),
      biEl('button', 'admin.bank.import.button', {}, { type: 'button', onclick: async () => {
        const f = file.files[0];
        if (!f) return;
        const format = f.name.toLowerCase().endsWith('.csv') ? 'csv' : 'json';
        try {
          const r = await api('POST', `/api/admin/programmes/${p.id}/questions?format=${format}`, await f.text(), true);
          note(msg, 'admin.bank.imported', { n: r.imported });
        } catch (e) { note(msg, '', {}, e); }
      } }),
      msg);
  }));
}

// poolForm moves one question between the formal pool and the practice
// pool (mock tests draw only practice questions).
function poolForm() {
  const id = h('input', { type: 'number', min: 1, class: 'short' });
  const pool = h('select', {},
    h('option', { value: 'practice' }, `${t('admin.pool.practice').zh} ${t('admin.pool.practice').en}`),
    h('option', { value: 'formal' }, `${t('admin.pool.formal').zh} ${t('admin.pool.formal').en}`));
  const msg = h('div');
  return h('div', { class: 'poolform' }, label('admin.pool.question', id), ' ', pool, ' ',
    biEl('button', 'admin.pool.button', {}, { type: 'button', onclick: async () => {
      try { await api('PUT', `/api/admin/questions/${id.value}/pool`, { pool: pool.value }); note(msg, 'admin.pool.done', { id: id.value }); }
      catch (e) { note(msg, '', {}, e); }
    } }), msg);
}

function imageUpload() {
  const file = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp' });
  const msg = h('div');
  return h('div', { class: 'bank' }, label('admin.image', file),
    biEl('button', 'admin.image.button', {}, { type: 'button', onclick: async () => {
      const f = file.files[0];
      if (!f) return;
      try {
        const r = await api('POST', '/api/admin/images', await f.arrayBuffer(), true);
        note(msg, 'admin.image.done', { ref: r.ref });
        msg.append(h('img', { src: r.url, class: 'qimg', alt: '' }));
      } catch (e) { note(msg, '', {}, e); }
    } }), msg);
}

function keyCorrection() {
  const q = h('input', { type: 'number', min: 1, id: 'key-q' });
  const ans = h('input', { id: 'key-answer', pattern: '[A-Ha-h]+' });
  const reason = h('input', { id: 'key-reason' });
  const msg = h('div');
  return section('admin.key', h('form', { class: 'grid-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const answer = [...ans.value.toUpperCase()].map((c) => 'ABCDEFGH'.indexOf(c)).sort((a, b) => a - b);
    try {
      const r = await api('PUT', `/api/admin/questions/${q.value}/key`, { answer, reason: reason.value });
      note(msg, 'admin.key.done', r);
    } catch (e) { note(msg, '', {}, e); }
  } }, label('admin.key.question', q), label('admin.key.answer', ans), label('admin.key.reason', reason),
  biEl('button', 'admin.save', {}, { type: 'submit', class: 'primary' })), msg);
}

// ---- servers ----------------------------------------------------------------

// cluster lists the live nodes with their load, and warns when recording
// segments wait on a node's disk because object storage is unreachable.
async function cluster() {
  let c;
  try {
    c = await api('GET', '/api/admin/cluster');
  } catch (e) { // the rest of the page works without it (Redis away)
    const msg = h('div');
    note(msg, '', {}, e);
    return section('admin.cluster', msg);
  }
  const cell = (v) => h('td', {}, String(v));
  const rows = c.nodes.map((n) => h('tr', {}, h('td', {}, n.id, n.id === c.node ? ' *' : ''), cell(n.url || '—'),
    h('td', {}, biEl('span', n.draining ? 'admin.cluster.draining' : 'admin.cluster.live')),
    cell(n.rooms), cell(n.candidates), cell(n.tracks), cell(n.cpu.toFixed(2)), cell(c.backlog[n.id] || 0)));
  const waiting = Object.values(c.backlog).reduce((a, b) => a + b, 0);
  return section('admin.cluster',
    c.object_storage ? '' : biEl('p', 'admin.cluster.local', {}, { class: 'hint' }),
    waiting > 0 ? biEl('div', 'admin.cluster.backlog.warn', { n: waiting }, { class: 'alert error', role: 'alert' }) : '',
    h('table', { id: 'cluster' }, h('tr', {}, biEl('th', 'admin.cluster.node'), h('th', {}, 'URL'), biEl('th', 'admin.cluster.state'),
      biEl('th', 'admin.cluster.rooms'), biEl('th', 'admin.cluster.candidates'), biEl('th', 'admin.cluster.tracks'),
      biEl('th', 'admin.cluster.cpu'), biEl('th', 'admin.cluster.backlog')), ...rows));
}

// ---- notifications -----------------------------------------------------------

// followBatch shows how a bulk sending goes, every 2 s until nothing waits.
async function followBatch(batch, queued, el) {
  const show = (st) => {
    const n = (k) => st[k] || 0;
    note(el, 'admin.notify.progress', { queued, sent: n('sent'), waiting: n('queued') + n('sending'), refused: n('refused') + n('invalid'), failed: n('failed') });
    el.firstChild.dataset.batch = batch;
  };
  for (;;) {
    let p;
    try { p = await api('GET', `/api/admin/notify/progress?batch=${encodeURIComponent(batch)}`); } catch (e) { note(el, '', {}, e); return; }
    show(p.states);
    if (!(p.states.queued || p.states.sending)) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// messages finds a person by ticket number or login name and shows where
// their notifications go and every message with its state; a message
// refused, failed or sent can be sent again.
function messages() {
  const out = h('div');
  const input = h('input', { name: 'user', required: true, maxlength: 100, id: 'messages-user' });
  const load = async () => {
    let r;
    try { r = await api('GET', `/api/admin/messages?user=${encodeURIComponent(input.value.trim())}`); } catch (e) { note(out, '', {}, e); return; }
    const msg = h('div');
    const email = h('input', { type: 'email', value: r.user.email, maxlength: 200, 'data-contact': 'email' });
    const mobile = h('input', { type: 'tel', value: r.user.mobile, maxlength: 16, 'data-contact': 'mobile' });
    const contact = h('form', { class: 'grid-form', onsubmit: async (ev) => {
      ev.preventDefault();
      try { await api('PUT', `/api/admin/users/${r.user.id}/contact`, { email: email.value, mobile: mobile.value }); note(msg, 'admin.notify.contact.saved'); } catch (e) { note(msg, '', {}, e); }
    } }, label('admin.notify.email', email), label('admin.notify.mobile', mobile), biEl('button', 'admin.notify.contact.save', {}, { type: 'submit', id: 'contact-save' }));
    const rows = r.messages.map((m) => h('tr', { 'data-message': m.id, 'data-state': m.state },
      h('td', {}, fmtTime(m.created_at)), h('td', {}, m.kind), h('td', {}, m.channel, h('div', { class: 'hint' }, m.address)),
      h('td', {}, biEl('span', `admin.notify.state.${m.state}`), m.attempts > 1 ? h('div', { class: 'hint' }, `×${m.attempts}`) : '',
        m.error ? h('div', { class: 'hint' }, m.error) : ''),
      h('td', {}, m.sent_at ? fmtTime(m.sent_at) : '—'),
      h('td', {}, ['sent', 'refused', 'failed'].includes(m.state) ? biEl('button', 'admin.notify.resend', {}, { type: 'button', onclick: async () => {
        try { await api('POST', `/api/admin/messages/${m.id}/resend`); await load(); } catch (e) { note(msg, '', {}, e); }
      } }) : '')));
    out.replaceChildren(h('p', {}, h('strong', {}, r.user.name), ` (${r.user.username})`), contact, msg,
      rows.length ? h('table', { id: 'messages' }, h('tr', {}, biEl('th', 'admin.notify.created'), biEl('th', 'admin.notify.kind'),
        biEl('th', 'admin.notify.channel'), biEl('th', 'admin.notify.state'), biEl('th', 'admin.notify.sent'), h('th')), ...rows)
        : biEl('p', 'admin.notify.none', {}, { class: 'hint' }));
  };
  return section('admin.notify', h('form', { class: 'grid-form', onsubmit: (ev) => { ev.preventDefault(); load(); } },
    label('admin.notify.user', input), biEl('button', 'admin.notify.find', {}, { type: 'submit', id: 'messages-find' })), out);
}

async function render() {
  try {
    const [{ exams }, { programmes }] = await Promise.all([api('GET', '/api/admin/exams'), api('GET', '/api/admin/programmes')]);
    root.replaceChildren(await sessions(exams), section('admin.exams', ...exams.map(examEditor)), bank(programmes), keyCorrection(), messages(), await cluster());
  } catch (e) {
    note(root, '', {}, e);
  }
}
render();
