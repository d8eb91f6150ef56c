// The candidate's certificate path: registering for a level, and every
// registration's fees, sittings, scores per component, retakes left and
// certificate, with the plan or materials upload.
import { loadDictionary, t, h, biEl, fmtTime } from './i18n.js';
import { api } from './api.js';

await loadDictionary();
const root = document.getElementById('cert');
const section = root.dataset.section;

// failure renders an API error as the server words it, with its detail.
function failure(err) {
  const m = err && err.error ? err.error.message : { zh: String(err), en: '' };
  return h('div', { class: 'alert error', role: 'alert' }, `${m.zh} `, h('span', { class: 'en' }, m.en),
    err && err.error && err.error.detail ? h('div', { class: 'small' }, err.error.detail) : '');
}

const yuan = (cents) => `¥${(cents / 100).toFixed(2)}`;

function field(key, input) {
  return h('label', {}, biEl('span', key), input);
}

async function registerForm() {
  const { levels, educations } = await api('GET', '/api/cert/levels');
  const level = h('select', { id: 'reg-level' }, ...levels.map((l) => h('option', { value: l.id },
    `${l.name_zh} ${l.name_en} · ${l.training_hours} h · ${yuan(l.fee_cents)}`)));
  const edu = h('select', { id: 'reg-education' }, ...educations.map((e) => h('option', { value: e }, `${t(`cert.edu.${e}`).zh} ${t(`cert.edu.${e}`).en}`)));
  edu.value = 'high_school';
  const name = h('input', { id: 'reg-name', required: true, maxlength: 64 });
  const idn = h('input', { id: 'reg-id', required: true, maxlength: 18, class: 'mono' });
  const hours = h('input', { id: 'reg-hours', type: 'number', min: 0, required: true });
  const org = h('input', { id: 'reg-org', maxlength: 100 });
  const out = h('div', { id: 'reg-result' });
  // A candidate who signed up logs in with their ID number: fill it in.
  const me = await api('GET', '/api/me').catch(() => null);
  if (me && /^\d{17}[\dX]$/.test(me.user.username)) {
    idn.value = me.user.username;
    name.value = me.user.display_name;
  }
  const form = h('form', { id: 'register', class: 'grid-form' },
    field('cert.level', level), field('cert.name', name), field('cert.id_number', idn), field('cert.education', edu),
    field('cert.hours', hours), field('cert.organisation', org),
    biEl('button', 'cert.register.submit', {}, { type: 'submit', class: 'primary' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/cert/registrations', { level_id: Number(level.value), name: name.value, id_number: idn.value,
        education: edu.value, training_hours: Number(hours.value), organisation: org.value });
      location.href = '/path?registered=1';
    } catch (err) {
      out.replaceChildren(failure(err));
    }
  });
  root.replaceChildren(biEl('p', 'cert.register.rules', {}, { class: 'hint' }), form, out,
    h('p', {}, biEl('a', 'cert.path.title', {}, { href: '/path' })));
}

function sittingRow(reg, comp, s, reload) {
  const cells = [h('td', {}, s.n === 1 ? biEl('span', 'cert.sitting.first') : biEl('span', 'cert.sitting.retake'))];
  const where = [];
  if (!s.paid) where.push(biEl('div', 'cert.fee.unpaid', {}, { class: 'state-retake' }));
  if (s.session_title) where.push(h('div', {}, s.session_title, ' ', s.starts_at ? fmtTime(s.starts_at) : ''), h('div', { class: 'mono small' }, s.ticket));
  if (s.attempt_id && s.passed == null) where.push(biEl('a', 'cand.enter', {}, { class: 'button', href: `/exam?attempt=${s.attempt_id}`, 'data-exam': s.attempt_id }));
  if (comp.component !== 'theory') {
    if (s.deadline) where.push(biEl('div', 'cert.deadline', { at: fmtTime(s.deadline) }, { class: 'small' }));
    if (s.defence_at) where.push(biEl('div', 'cert.defence', { at: fmtTime(s.defence_at) }));
    if (s.file_name) where.push(h('div', {}, h('a', { href: `/api/cert/sittings/${s.id}/document` }, s.file_name), ' ', s.submitted_at ? fmtTime(s.submitted_at) : ''));
    if (s.deadline && s.passed == null && s.paid) {
      const file = h('input', { type: 'file', accept: '.pdf,.docx,application/pdf', 'data-upload': s.id });
      const msg = h('div');
      const btn = biEl('button', comp.component === 'practical' ? 'cert.upload.plan' : 'cert.upload.materials', {}, { type: 'button', 'data-upload-button': s.id });
      btn.addEventListener('click', async () => {
        const f = file.files[0];
        if (!f) return;
        try {
          await api('POST', `/api/cert/sittings/${s.id}/document?name=${encodeURIComponent(f.name)}`, f, true);
          reload();
        } catch (err) {
          msg.replaceChildren(failure(err));
        }
      });
      where.push(h('div', { class: 'inline' }, file, btn), biEl('div', 'cert.upload.hint', {}, { class: 'hint' }), msg);
    }
  }
  cells.push(h('td', {}, ...where));
  cells.push(h('td', { 'data-score': s.id }, s.score == null ? '—' : String(s.score)),
    h('td', {}, s.passed == null ? biEl('span', 'cert.pending') : biEl('span', s.passed ? 'cert.state.passed' : 'cert.failed', {}, { class: s.passed ? 'state-passed' : 'state-retake' })));
  return h('tr', {}, ...cells);
}

function registrationCard(reg, reload) {
  const fees = h('table', {}, h('tr', {}, biEl('th', 'cert.fee.item'), biEl('th', 'cert.fee.amount'), biEl('th', 'cert.fee.status')),
    ...reg.fees.map((f) => h('tr', {}, h('td', {}, biEl('span', `cert.fee.${f.item}`), f.component ? ` · ${t(`cert.component.${f.component}`).zh}` : ''),
      h('td', {}, yuan(f.amount_cents)),
      h('td', { 'data-fee': f.id }, f.paid_at ? biEl('span', 'cert.fee.paid', { ref: f.reference, at: fmtTime(f.paid_at) }) : biEl('span', 'cert.fee.unpaid', {}, { class: 'state-retake' })))));
  const comps = reg.components.map((c) => {
    const head = h('div', { class: 'inline' }, h('strong', {}, biEl('span', `cert.component.${c.component}`)), ' · ',
      biEl('span', `cert.state.${c.state}`, {}, { class: `state-${c.state}`, 'data-state': c.component }), ' · ',
      biEl('span', 'cert.retakes_left', { n: c.retakes_left }));
    const parts = [head];
    if (c.state === 'retake' && reg.status === 'open') {
      const msg = h('div');
      const btn = biEl('button', 'cert.retake.request', { fee: '200' }, { type: 'button', 'data-retake': c.component });
      btn.addEventListener('click', async () => {
        try { await api('POST', `/api/cert/registrations/${reg.id}/retakes`, { component: c.component }); reload(); } catch (err) { msg.replaceChildren(failure(err)); }
      });
      parts.push(h('p', {}, btn), msg);
    }
    if (c.sittings.length) {
      parts.push(h('table', {}, h('tr', {}, biEl('th', 'cert.sitting'), biEl('th', 'cert.where'), biEl('th', 'cert.score'), biEl('th', 'cert.result')),
        ...c.sittings.map((s) => sittingRow(reg, c, s, reload))));
    }
    return h('div', { class: 'block' }, ...parts);
  });
  const card = h('article', { class: 'cert-reg', 'data-registration': reg.id },
    h('h3', {}, `${reg.level_zh} `, h('span', { class: 'en' }, reg.level_en), ' · ', biEl('span', `cert.reg.${reg.status}`, {}, { 'data-reg-status': reg.status })),
    h('p', { class: 'small' }, `${reg.name} · ${reg.id_number} · ${reg.organisation || '—'} · ${reg.training_hours} h`),
    biEl('h4', 'cert.fees'), fees,
    reg.owed_cents ? biEl('p', 'cert.owed', { amount: yuan(reg.owed_cents) }, { class: 'state-retake' }) : '',
    ...comps);
  if (reg.register_again) {
    card.append(h('div', { class: 'alert error', role: 'alert', id: 'register-again' }, biEl('p', 'cert.register_again'),
      biEl('a', 'cert.register.title', {}, { href: '/register', class: 'button primary' })));
  }
  if (reg.certificate) {
    const c = reg.certificate;
    card.append(h('div', { class: 'alert notice', id: 'certificate-box' }, biEl('p', 'cert.issued_notice'),
      h('p', {}, h('span', { class: 'mono', 'data-cert-number': c.number }, c.number), ' · ', biEl('span', `cert.status.${c.status}`, {}, { class: `status-${c.status}` })),
      biEl('a', 'cert.certificate.open', {}, { href: `/cert/${encodeURIComponent(c.number)}`, class: 'button primary', id: 'open-certificate' })));
  }
  return card;
}

async function path() {
  const reload = () => path().catch((err) => root.replaceChildren(failure(err)));
  const { registrations } = await api('GET', '/api/cert/path');
  root.replaceChildren(
    new URLSearchParams(location.search).has('registered') ? biEl('div', 'cert.registered', {}, { class: 'alert notice', role: 'status' }) : '',
    registrations.length ? '' : biEl('p', 'cert.path.none'),
    ...registrations.map((r) => registrationCard(r, reload)),
    h('p', {}, biEl('a', 'cert.register.title', {}, { href: '/register', class: 'button' })));
}

(section === 'register' ? registerForm() : path()).catch((err) => root.replaceChildren(failure(err)));
