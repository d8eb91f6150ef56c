// The admin's certificate programme page: registrations and the fee
// ledger, seating, panels and defences, cohort import, retakes, reviewers'
// organisations and certificates. Every action goes through the API and is
// audited there; errors are shown as the server words them.
import { loadDictionary, t, h, biEl, fmtTime } from './i18n.js';
import { api } from './api.js';

await loadDictionary();
const root = document.getElementById('cert');
const yuan = (cents) => `¥${(cents / 100).toFixed(2)}`;
let sessions = [];
let reviewers = [];

function failure(err) {
  const m = err && err.error ? err.error.message : { zh: String(err), en: '' };
  return h('div', { class: 'alert error', role: 'alert' }, `${m.zh} `, h('span', { class: 'en' }, m.en),
    err && err.error && err.error.detail ? h('div', { class: 'small' }, err.error.detail) : '',
    err && err.lines ? h('ul', {}, ...err.lines.map((l) => h('li', {}, `${l.line}: ${l.error}`))) : '',
    err && err.rules ? h('ul', {}, ...err.rules.map((r) => h('li', { 'data-bad-rule': r.rule }, ...ruleLabel(r.rule), `: ${r.error}`))) : '');
}

// ruleLabel names a rule in both languages (an unknown one by its JSON name).
function ruleLabel(rule) {
  const l = t(`cert.rule.${rule}`);
  return l.zh === `cert.rule.${rule}` ? [h('span', { class: 'mono' }, rule || '?')] : [`${l.zh} `, h('span', { class: 'en' }, l.en)];
}

// act runs an action and reloads, or shows its error in msg.
function act(msg, f) {
  return async () => {
    try { await f(); await load(); } catch (err) { msg.replaceChildren(failure(err)); }
  };
}

function section(key, ...children) {
  return h('section', { class: 'block' }, biEl('h2', key), ...children);
}

function regRow(reg) {
  const msg = h('div');
  const actions = [];
  for (const f of reg.fees.filter((f) => !f.paid_at)) {
    const ref = h('input', { placeholder: t('cert.fee.reference').zh, 'data-receipt': f.id });
    actions.push(h('div', { class: 'inline' }, biEl('span', `cert.fee.${f.item}`), ` ${yuan(f.amount_cents)} `, ref,
      biEl('button', 'cert.fee.mark', {}, { type: 'button', 'data-pay': f.id, onclick: act(msg, () => api('POST', `/api/admin/cert/fees/${f.id}/paid`, { reference: ref.value })) })));
  }
  for (const c of reg.components) {
    const s = c.sittings[c.sittings.length - 1];
    if (!s || s.passed != null || reg.status !== 'open') continue;
    if (c.component === 'theory' && !s.ticket) {
      const sel = h('select', { 'data-session-for': reg.id }, ...sessions.map((x) => h('option', { value: x.id }, x.title)));
      actions.push(h('div', { class: 'inline' }, biEl('span', 'cert.seat'), sel,
        biEl('button', 'cert.seat.do', {}, { type: 'button', 'data-seat': reg.id, onclick: act(msg, () => api('POST', `/api/admin/cert/registrations/${reg.id}/seat`, { session_id: Number(sel.value) })) })));
    }
    if (c.component !== 'theory' && s.submitted_at) {
      const boxes = reviewers.map((r) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', value: r.id, 'data-member': r.id }), `${r.display_name}${r.organisation ? ` (${r.organisation})` : ''}`));
      actions.push(h('div', { class: 'inline', 'data-panel-form': s.id }, biEl('span', 'cert.panel.form'), ...boxes,
        biEl('button', 'cert.panel.form.do', {}, { type: 'button', 'data-form-panel': s.id,
          onclick: act(msg, () => api('POST', `/api/admin/cert/sittings/${s.id}/panel`, { members: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value)) })) })));
      if (c.component === 'review') {
        const at = h('input', { type: 'datetime-local' });
        actions.push(h('div', { class: 'inline' }, biEl('span', 'cert.defence.schedule'), at,
          biEl('button', 'cert.save', {}, { type: 'button', onclick: act(msg, () => api('POST', `/api/admin/cert/sittings/${s.id}/defence`, { at: new Date(at.value).toISOString() })) })));
      }
    }
  }
  if (reg.certificate && reg.certificate.status === 'valid') {
    const reason = h('input', { placeholder: t('cert.revoke.reason').zh, 'data-revoke-reason': reg.certificate.number });
    actions.push(h('div', { class: 'inline' }, h('a', { href: `/cert/${encodeURIComponent(reg.certificate.number)}`, class: 'mono' }, reg.certificate.number), reason,
      biEl('button', 'cert.revoke', {}, { type: 'button', onclick: act(msg, () => api('POST', '/api/admin/cert/certificates/revoke', { number: reg.certificate.number, reason: reason.value })) })));
  } else if (reg.certificate) {
    actions.push(h('div', {}, h('span', { class: 'mono' }, reg.certificate.number), ' ', biEl('span', 'cert.status.revoked', {}, { class: 'status-revoked' })));
  }
  const comps = reg.components.map((c) => h('div', {}, biEl('span', `cert.component.${c.component}`), ': ', biEl('span', `cert.state.${c.state}`, {}, { class: `state-${c.state}` }),
    ...c.sittings.filter((s) => s.score != null).map((s) => ` ${s.score}`)));
  return h('tr', { 'data-registration': reg.id },
    h('td', {}, String(reg.id)),
    h('td', {}, reg.name, h('div', { class: 'mono small' }, reg.id_number)),
    h('td', {}, `${reg.level_zh} `, h('span', { class: 'en' }, reg.level_en)),
    h('td', {}, reg.organisation || '—'),
    h('td', {}, biEl('span', `cert.reg.${reg.status}`), reg.owed_cents ? h('div', { class: 'state-retake' }, yuan(reg.owed_cents)) : ''),
    h('td', {}, ...comps),
    h('td', { class: 'actions' }, ...actions, msg));
}

function registerForm(levels, educations) {
  const level = h('select', {}, ...levels.map((l) => h('option', { value: l.id }, `${l.programme} · ${l.name_zh} ${l.name_en}`)));
  const inputs = { name: h('input'), id_number: h('input', { class: 'mono' }), training_hours: h('input', { type: 'number' }), organisation: h('input') };
  const edu = h('select', {}, ...educations.map((e) => h('option', { value: e }, t(`cert.edu.${e}`).zh)));
  edu.value = 'high_school';
  const msg = h('div');
  const form = h('form', { class: 'grid-form' }, h('label', {}, biEl('span', 'cert.level'), level),
    h('label', {}, biEl('span', 'cert.name'), inputs.name), h('label', {}, biEl('span', 'cert.id_number'), inputs.id_number),
    h('label', {}, biEl('span', 'cert.education'), edu), h('label', {}, biEl('span', 'cert.hours'), inputs.training_hours),
    h('label', {}, biEl('span', 'cert.organisation'), inputs.organisation), biEl('button', 'cert.register.submit', {}, { type: 'submit' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/api/cert/registrations', { level_id: Number(level.value), name: inputs.name.value, id_number: inputs.id_number.value,
        education: edu.value, training_hours: Number(inputs.training_hours.value), organisation: inputs.organisation.value });
      await load();
      root.prepend(biEl('div', 'cert.admin.login', { username: r.login.username, password: r.login.password }, { class: 'alert notice', role: 'status' }));
    } catch (err) { msg.replaceChildren(failure(err)); }
  });
  return h('div', {}, form, msg);
}

function importForm(levels) {
  const progs = [...new Map(levels.map((l) => [l.programme_id, l.programme])).entries()];
  const prog = h('select', {}, ...progs.map(([id, name]) => h('option', { value: id }, name)));
  const text = h('textarea', { rows: 5, class: 'mono', placeholder: 'level,name,id_number,education,training_hours,organisation' });
  const msg = h('div');
  const btn = biEl('button', 'cert.import.do', {}, { type: 'button' });
  btn.addEventListener('click', async () => {
    try {
      const r = await api('POST', `/api/admin/cert/programmes/${prog.value}/import`, text.value, true);
      await load();
      root.prepend(h('div', { class: 'alert notice', role: 'status' }, biEl('p', 'cert.import.done', { n: r.imported.length }),
        h('table', {}, ...r.imported.map((i) => h('tr', {}, h('td', {}, i.name), h('td', { class: 'mono' }, i.username), h('td', { class: 'mono' }, i.password))))));
    } catch (err) { msg.replaceChildren(failure(err)); }
  });
  return h('div', {}, biEl('p', 'cert.import.hint', {}, { class: 'hint' }), prog, text, btn, msg);
}

function retakes(list) {
  return h('table', {}, h('tr', {}, biEl('th', 'cert.level'), biEl('th', 'cert.retake.waiting'), h('th')),
    ...list.map((g) => {
      const msg = h('div');
      const cells = [];
      if (g.waiting > 0 && g.dedicated) {
        const code = h('input', { placeholder: 'code' });
        const title = h('input', { placeholder: t('cert.retake.dedicated').zh });
        const start = h('input', { type: 'datetime-local' });
        const end = h('input', { type: 'datetime-local' });
        cells.push(biEl('p', 'cert.retake.over', { n: g.waiting, threshold: g.threshold }), h('div', { class: 'inline' }, code, title, start, end,
          biEl('button', 'cert.retake.dedicated', {}, { type: 'button', 'data-dedicated': g.level_id, onclick: act(msg, () => api('POST', `/api/admin/cert/retakes/${g.level_id}/place`,
            { dedicated: true, session: { code: code.value, title: title.value, starts_at: new Date(start.value).toISOString(), admission_ends_at: new Date(end.value).toISOString(), ends_at: new Date(end.value).toISOString(), admission_mode: 'manual' } })) })));
      }
      if (g.waiting > 0) {
        cells.push(biEl('button', 'cert.retake.next', {}, { type: 'button', 'data-place': g.level_id, onclick: act(msg, () => api('POST', `/api/admin/cert/retakes/${g.level_id}/place`, { dedicated: false })) }));
      }
      return h('tr', { 'data-retakes': g.level_id }, h('td', {}, `${g.level_zh} `, h('span', { class: 'en' }, g.level_en)),
        h('td', { 'data-waiting': g.level_id }, `${g.waiting} / ${g.threshold}`), h('td', {}, ...cells, msg));
    }));
}

// attention lists valid certificates whose passing theory attempt a review
// has since ruled invalid: the admin looks at the review and decides.
function attention(list) {
  return h('div', { class: 'alert error', role: 'alert', 'data-attention': list.length }, biEl('p', 'cert.attention.hint'),
    h('table', {}, ...list.map((c) => {
      const reason = h('input', { placeholder: t('cert.revoke.reason').zh, 'data-attention-reason': c.number });
      const msg = h('div');
      return h('tr', { 'data-attention-number': c.number },
        h('td', {}, h('a', { href: `/cert/${encodeURIComponent(c.number)}`, class: 'mono' }, c.number), h('div', {}, c.holder_name)),
        h('td', {}, `${c.level_zh} `, h('span', { class: 'en' }, c.level_en)),
        h('td', {}, biEl('div', 'cert.attention.ruled', { at: fmtTime(c.ruled_at) }), h('div', { class: 'small' }, c.reason),
          biEl('a', 'cert.attention.review', {}, { href: `/review/attempt?id=${c.attempt_id}` })),
        h('td', {}, h('div', { class: 'inline' }, reason, biEl('button', 'cert.revoke', {}, { type: 'button',
          onclick: act(msg, () => api('POST', '/api/admin/cert/certificates/revoke', { number: c.number, reason: reason.value })) })), msg));
    })));
}

function reviewerRows() {
  return h('table', {}, ...reviewers.map((r) => {
    const org = h('input', { value: r.organisation, 'data-affiliation': r.id });
    const msg = h('div');
    return h('tr', {}, h('td', {}, `${r.display_name} (${r.username})`), h('td', {}, h('div', { class: 'inline' }, org,
      biEl('button', 'cert.save', {}, { type: 'button', onclick: act(msg, () => api('PUT', `/api/admin/cert/reviewers/${r.id}/affiliation`, { organisation: org.value })) })), msg));
  }));
}

function panels(list) {
  return h('table', {}, h('tr', {}, biEl('th', 'cert.name'), biEl('th', 'cert.component'), biEl('th', 'cert.panel.progress.head'), biEl('th', 'cert.score')),
    ...list.map((s) => h('tr', {}, h('td', {}, s.candidate), h('td', {}, biEl('span', `cert.component.${s.component}`)),
      h('td', {}, `${s.scored} / ${s.members}`, ...(s.scores || []).map((p) => h('div', { class: 'small' }, `${p.name}: ${p.score == null ? '—' : p.score} ${p.comment || ''}`))),
      h('td', {}, s.score == null ? '—' : String(s.score)))));
}

// The rules of a programme an admin may set, in the order the screen shows
// them: [rule, input kind]. Fees are edited in yuan, the upload limit in MB.
const ruleFields = [['pass_mark', 'number'], ['score_method', 'method'], ['min_panel_size', 'number'],
  ['retakes_per_component', 'number'], ['retake_fee_cents', 'yuan'], ['dedicated_retake_threshold', 'number'],
  ['submission_working_days', 'number'], ['max_upload_bytes', 'mb'], ['min_education', 'education'], ['theory_minutes', 'number'],
  ['invigilator_ratio', 'number'], ['min_invigilators_per_room', 'number'], ['room_capacity', 'number']];
const MB = 1024 * 1024;

// calendar edits a list of dates (holidays, working weekends) in place.
function calendar(rule, days) {
  const list = h('ul', { class: 'calendar', 'data-calendar': rule });
  const draw = () => list.replaceChildren(...days.map((d, i) => h('li', { 'data-day': d }, h('span', { class: 'mono' }, d), ' ',
    biEl('button', 'cert.rules.remove_day', {}, { type: 'button', 'data-remove-day': d, onclick: () => { days.splice(i, 1); draw(); } }))));
  draw();
  const day = h('input', { type: 'date', 'data-new-day': rule });
  const add = biEl('button', 'cert.rules.add_day', {}, { type: 'button', 'data-add-day': rule, onclick: () => {
    if (day.value && !days.includes(day.value)) { days.push(day.value); days.sort(); draw(); }
    day.value = '';
  } });
  return h('div', { class: 'rule-field', 'data-rule': rule }, biEl('h3', `cert.rule.${rule}`), biEl('p', `cert.rule.${rule}.hint`, {}, { class: 'hint' }),
    list, h('div', { class: 'inline' }, day, add));
}

function rulesForm(pr, educations) {
  const msg = h('div');
  const inputs = {};
  const fields = ruleFields.map(([rule, kind]) => {
    const v = pr.rules[rule];
    let input;
    if (kind === 'method') {
      input = h('select', {}, ...['mean', 'median'].map((m) => h('option', { value: m }, `${t(`cert.rule.score_method.${m}`).zh} ${t(`cert.rule.score_method.${m}`).en}`)));
    } else if (kind === 'education') {
      input = h('select', {}, ...educations.map((e) => h('option', { value: e }, `${t(`cert.edu.${e}`).zh} ${t(`cert.edu.${e}`).en}`)));
    } else {
      input = h('input', { type: 'number', step: kind === 'number' ? '1' : '0.01', min: '0' });
    }
    input.value = kind === 'yuan' ? (v / 100).toFixed(2) : kind === 'mb' ? String(Math.round((v / MB) * 100) / 100) : String(v);
    input.setAttribute('data-rule-input', rule);
    inputs[rule] = [input, kind];
    return h('label', { 'data-rule': rule }, biEl('span', `cert.rule.${rule}`), input, biEl('span', `cert.rule.${rule}.hint`, {}, { class: 'hint' }));
  });
  const holidays = [...pr.rules.holidays];
  const weekends = [...pr.rules.working_weekends];
  const save = biEl('button', 'cert.rules.save', {}, { type: 'button', class: 'primary', 'data-save-rules': pr.id });
  save.addEventListener('click', async () => {
    const change = { holidays, working_weekends: weekends };
    for (const [rule, [input, kind]] of Object.entries(inputs)) {
      const n = Number(input.value);
      change[rule] = kind === 'method' || kind === 'education' ? input.value : kind === 'yuan' ? Math.round(n * 100) : kind === 'mb' ? Math.round(n * MB) : n;
    }
    try {
      await api('PUT', `/api/admin/programmes/${pr.id}/rules`, change);
      await load();
      root.prepend(biEl('div', 'cert.rules.saved', {}, { class: 'alert ok', role: 'status' }));
    } catch (err) { msg.replaceChildren(failure(err)); }
  });
  return h('div', { 'data-programme-rules': pr.id }, h('h3', {}, `${pr.name_zh} `, h('span', { class: 'en' }, pr.name_en)),
    biEl('p', 'cert.rules.hint', {}, { class: 'hint' }), h('div', { class: 'grid-form rules-grid' }, ...fields),
    h('div', { class: 'calendars' }, calendar('holidays', holidays), calendar('working_weekends', weekends)), save, msg,
    biEl('h3', 'cert.rules.levels'), levelsForm(pr.levels));
}

function levelsForm(levels) {
  return h('table', { class: 'levels' }, h('tr', {}, biEl('th', 'cert.level'), biEl('th', 'cert.rule.training_hours'), biEl('th', 'cert.rule.fee_cents'),
    biEl('th', 'cert.components'), h('th')),
  ...levels.map((l) => {
    const hours = h('input', { type: 'number', min: '0', step: '1', value: String(l.training_hours), 'data-level-hours': l.id });
    const fee = h('input', { type: 'number', min: '0', step: '0.01', value: (l.fee_cents / 100).toFixed(2), 'data-level-fee': l.id });
    const boxes = ['theory', 'practical', 'review'].map((c) => {
      const box = h('input', { type: 'checkbox', value: c, 'data-level-component': `${l.id}-${c}` });
      box.checked = l.components.includes(c);
      return h('label', { class: 'inline' }, box, biEl('span', `cert.component.${c}`));
    });
    const msg = h('div');
    return h('tr', { 'data-level': l.id }, h('td', {}, `${l.name_zh} `, h('span', { class: 'en' }, l.name_en)), h('td', {}, hours), h('td', {}, fee),
      h('td', {}, ...boxes), h('td', {}, biEl('button', 'cert.save', {}, { type: 'button', 'data-save-level': l.id,
        onclick: act(msg, () => api('PUT', `/api/admin/levels/${l.id}`, { training_hours: Number(hours.value), fee_cents: Math.round(Number(fee.value) * 100),
          components: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value) })) }), msg));
  }));
}

async function load() {
  try {
    const [regs, lv, ses, rv, rt, pn, at] = await Promise.all([api('GET', '/api/admin/cert/registrations'), api('GET', '/api/cert/levels'),
      api('GET', '/api/admin/sessions'), api('GET', '/api/admin/cert/reviewers'), api('GET', '/api/admin/cert/retakes'), api('GET', '/api/admin/cert/panels'),
      api('GET', '/api/admin/cert/attention')]);
    const progIDs = [...new Set(lv.levels.map((l) => l.programme_id))];
    const rules = await Promise.all(progIDs.map((id) => api('GET', `/api/admin/programmes/${id}/rules`)));
    sessions = ses.sessions;
    reviewers = rv.reviewers || [];
    root.replaceChildren(h('div', { class: 'cert-admin' },
      at.certificates.length ? section('cert.admin.attention', attention(at.certificates)) : '',
      section('cert.admin.registrations', h('table', {}, h('tr', {}, h('th', {}, '#'), biEl('th', 'cert.name'), biEl('th', 'cert.level'), biEl('th', 'cert.organisation'),
        biEl('th', 'cert.status'), biEl('th', 'cert.components'), h('th')), ...regs.registrations.map(regRow))),
      section('cert.admin.register', registerForm(lv.levels, lv.educations)),
      section('cert.admin.import', importForm(lv.levels)),
      section('cert.admin.retakes', retakes(rt.retakes)),
      section('cert.admin.panels', panels(pn.sittings)),
      section('cert.admin.reviewers', reviewerRows()),
      section('cert.admin.rules', ...rules.map((pr) => rulesForm(pr, lv.educations)))));
  } catch (err) {
    root.replaceChildren(failure(err));
  }
}
load();
