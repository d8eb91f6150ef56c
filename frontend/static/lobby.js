// The lobby of a formal exam: the steps before the exam (device check,
// rules, identity photo, phone camera, set-up checklist), a countdown to the
// session's start, where the candidate stands with their invigilator, and
// the Start button once they are admitted and the exam is open.
import { t, bi, h, biEl, csrfToken, fmtTime } from './i18n.js';
import { cameraStream } from './camera.js';
import { phonePreview } from './pairing.js';

const steps = ['device_check', 'rules', 'identity', 'phone', 'setup'];
let L = null; // the lobby on the page: {root, ctx, info, open, timer}

async function api(path, opts = {}) {
  const r = await fetch(`/api/attempts/${L.ctx.attempt}/${path}`, {
    ...opts, headers: { 'X-CSRF-Token': csrfToken(), ...(opts.headers || {}) },
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = body.error || {};
    throw Object.assign(new Error(e.code), { text: e.message || { zh: r.statusText, en: r.statusText } });
  }
  return body;
}

// renderLobby shows (or refreshes) the lobby. ctx: {attempt, paper,
// serverNow(), send(msg), start()}.
export function renderLobby(screen, ctx) {
  if (L && L.root.isConnected) {
    L.ctx = ctx;
    refresh();
    return;
  }
  const root = h('div', { class: 'card lobby journey', id: 'journey' },
    biEl('h2', 'journey.title'),
    biEl('p', 'journey.intro', {}, { class: 'hint' }),
    h('p', { id: 'timing', class: 'timing', role: 'timer' }),
    h('ol', { class: 'steps', id: 'steps' }),
    h('div', { id: 'step-panel', class: 'step-panel' }),
    h('div', { id: 'lobby-state', role: 'status', 'aria-live': 'polite' }),
    h('div', { class: 'center' },
      biEl('p', 'exam.lobby.text', { minutes: ctx.paper.duration_minutes }, { class: 'hint' }),
      biEl('button', 'exam.start', {}, { type: 'button', class: 'primary', id: 'start', disabled: true, onclick: () => { $('start').disabled = true; L.ctx.start(); } })));
  screen(root);
  clearInterval(L?.timer);
  L = { root, ctx, info: null, open: null, timer: setInterval(tick, 1000) };
  refresh();
}

const $ = (id) => document.getElementById(id);

async function refresh() {
  try {
    L.info = await api('readiness');
  } catch (e) {
    bi($('lobby-state'), e.text);
    return;
  }
  const r = L.info.readiness;
  $('steps').replaceChildren(...steps.map((s) => {
    const done = !!r.done[s];
    return h('li', { class: done ? 'done' : 'todo', 'data-step': s },
      biEl('strong', `journey.step.${s}`), ' ',
      biEl('span', done ? 'journey.done' : 'journey.todo', {}, { class: 'mark' }), ' ',
      biEl('button', done ? 'journey.redo' : 'journey.do', {}, { type: 'button', 'data-do': s, onclick: () => openStep(s) }));
  }));
  const state = $('lobby-state');
  state.className = `alert ${{ refused: 'error', admitted: 'ok', ready: 'notice' }[r.state] || 'notice'}`;
  state.dataset.state = r.state;
  bi(state, `journey.state.${r.state}`, { reason: r.refused || '' });
  // Open the first step left, unless the candidate is busy with one.
  if (!L.open || r.done[L.open]) openStep(r.missing?.[0] || null);
  tick();
}

// tick updates the countdown, the admission window and the Start button.
function tick() {
  if (!L?.root.isConnected) { clearInterval(L?.timer); return; }
  const p = L.ctx.paper;
  const now = L.ctx.serverNow();
  const opens = p.opens_at ? new Date(p.opens_at).getTime() : 0;
  const closes = p.admission_ends_at ? new Date(p.admission_ends_at).getTime() : Infinity;
  const el = $('timing');
  if (now < opens) bi(el, 'journey.opens_in', { time: clock(opens - now) });
  else if (now >= closes) bi(el, 'journey.closed');
  else if (now - opens > 60e3) bi(el, 'journey.late', { time: clock(closes - now) });
  else bi(el, 'journey.open_now');
  el.className = `timing${now >= closes ? ' closed' : ''}`;
  const admitted = L.info?.readiness.state === 'admitted';
  const start = $('start');
  if (!start.dataset.busy) start.disabled = !(admitted && now >= opens && now < closes);
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

function openStep(s) {
  L.open = s;
  for (const li of $('steps').children) li.classList.toggle('current', li.dataset.step === s);
  const panel = $('step-panel');
  panel.replaceChildren();
  if (s) panel.append(...({ device_check: deviceStep, rules: rulesStep, identity: identityStep, phone: phoneStep, setup: setupStep }[s])());
}

function problem(box, e) {
  box.className = 'alert error';
  bi(box, e.text || { zh: String(e), en: String(e) });
}

function deviceStep() {
  return [biEl('h3', 'journey.step.device_check'),
    biEl('a', 'journey.device.go', {}, { class: 'button primary', id: 'go-check', href: `/check?attempt=${L.ctx.attempt}` })];
}

function rulesStep() {
  const when = L.info.readiness.done.rules;
  const box = h('div', { role: 'status' });
  const ok = h('input', { type: 'checkbox', id: 'rules-ok' });
  const accept = biEl('button', 'rules.accept.button', {}, { type: 'button', class: 'primary', id: 'rules-accept', disabled: true });
  ok.onchange = () => { accept.disabled = !ok.checked; };
  accept.onclick = async () => {
    accept.disabled = true;
    try {
      await api('rules', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ version: L.info.rules_version }) });
      L.open = null;
      refresh();
    } catch (e) { problem(box, e); accept.disabled = false; }
  };
  return [biEl('h3', 'rules.title'),
    h('div', { class: 'rules', id: 'rules' },
      biEl('p', 'rules.setup'), biEl('p', 'rules.forbidden'), biEl('p', 'rules.violation'),
      biEl('p', 'rules.privacy', { days: L.info.retention_days })),
    when ? biEl('p', 'rules.accepted', { time: fmtTime(when) }, { class: 'hint' }) : '',
    h('label', { class: 'inline' }, ok, ' ', biEl('span', 'rules.accept')),
    h('p', {}, accept), box];
}

function identityStep() {
  const box = h('div', { role: 'status' });
  const video = h('video', { autoplay: true, muted: true, playsinline: true, class: 'selfview big' });
  const still = h('canvas', { class: 'still', hidden: true });
  const take = biEl('button', 'identity.take', {}, { type: 'button', class: 'primary', id: 'identity-take' });
  const use = biEl('button', 'identity.use', {}, { type: 'button', class: 'primary', id: 'identity-use', hidden: true });
  const again = biEl('button', 'identity.retake', {}, { type: 'button', hidden: true });
  cameraStream().then((s) => { video.srcObject = s; }).catch(() => problem(box, { text: t('identity.nocamera') }));
  const showing = (taken) => { video.hidden = taken; still.hidden = !taken; take.hidden = taken; use.hidden = !taken; again.hidden = !taken; };
  take.onclick = () => {
    still.width = video.videoWidth || 640;
    still.height = video.videoHeight || 480;
    still.getContext('2d').drawImage(video, 0, 0, still.width, still.height);
    showing(true);
  };
  again.onclick = () => showing(false);
  use.onclick = async () => {
    use.disabled = true;
    const blob = await new Promise((res) => still.toBlob(res, 'image/jpeg', 0.85));
    try {
      await api('identity', { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: blob });
      L.open = null;
      refresh();
    } catch (e) { problem(box, e); use.disabled = false; }
  };
  return [biEl('h3', 'journey.step.identity'), biEl('p', 'identity.text'), video, still, h('p', {}, take, ' ', use, ' ', again), box];
}

function phoneStep() {
  const box = h('div', { role: 'status' });
  const status = biEl('p', 'pair.waiting', {}, { id: 'phone-status' });
  const preview = phonePreview((live) => bi(status, live ? 'pair.connected' : 'pair.waiting'));
  // The server decides when the phone counts as paired (it sees the phone's
  // video); ask it every 2 s while this step is open.
  const ask = async () => {
    if (L.open !== 'phone' || !preview.isConnected) return;
    try {
      await api('phone', { method: 'POST' });
      L.open = null;
      refresh();
      return;
    } catch (e) {
      if (e.message !== 'phone_first') problem(box, e);
    }
    setTimeout(ask, 2000);
  };
  setTimeout(ask, 2000);
  return [biEl('h3', 'journey.step.phone'),
    biEl('button', 'pair.button', {}, { type: 'button', class: 'primary', id: 'lobby-pair', onclick: () => L.ctx.send({ type: 'pair', id: 'pair' }) }),
    status, preview, box];
}

function setupStep() {
  const box = h('div', { role: 'status' });
  const pc = h('video', { autoplay: true, muted: true, playsinline: true, class: 'selfview' });
  cameraStream().then((s) => { pc.srcObject = s; }).catch(() => problem(box, { text: t('identity.nocamera') }));
  const items = L.info.setup_items.map((it) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', value: it, 'data-item': it }), ' ', biEl('span', `setup.item.${it}`)));
  const confirm = biEl('button', 'setup.confirm', {}, { type: 'button', class: 'primary', id: 'setup-confirm' });
  confirm.onclick = async () => {
    confirm.disabled = true;
    const chosen = items.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    try {
      await api('setup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ items: chosen }) });
      L.open = null;
      refresh();
    } catch (e) { problem(box, e); confirm.disabled = false; }
  };
  return [biEl('h3', 'journey.step.setup'),
    L.info.readiness.done.phone ? biEl('p', 'setup.text') : biEl('p', 'setup.phone_first', {}, { class: 'alert notice' }),
    h('div', { class: 'twocams' },
      h('figure', {}, pc, biEl('figcaption', 'setup.pc')),
      h('figure', {}, phonePreview(), biEl('figcaption', 'setup.phone')),
      h('figure', {}, h('img', { src: '/static/placement.svg', alt: t('setup.drawing').zh, class: 'drawing' }), biEl('figcaption', 'setup.drawing'))),
    h('div', { class: 'checklist', id: 'setup-items' }, ...items),
    h('p', {}, confirm), box];
}
