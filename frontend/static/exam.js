// The candidate's exam page. The server owns the clock and the answers:
// every answer is kept in this browser (localStorage) until the server
// acknowledges that it is durably stored, and is resent after any reconnect.
import { loadDictionary, t, bi, h, biEl, span, fmtTime } from './i18n.js';
import { startWatching, flushSignals, onProctorMessage, pageSignal } from './watch.js';
import { startCamera, onMediaMessage } from './camera.js';
import { startFaceAnalysis, stopFaceAnalysis } from './face.js';
import { startVoiceAnalysis, stopVoiceAnalysis } from './voice.js';
import { startPhoneView, onPairMessage } from './pairing.js';
import { renderLobby as renderJourney } from './lobby.js';
import { socketTarget } from './socket.js';

await loadDictionary();

const attemptId = Number(document.getElementById('exam').dataset.attempt);
const $ = (id) => document.getElementById(id);
const store = {
  key: (k) => `examhall:attempt:${attemptId}:${k}`,
  get(k, def) {
    try { return JSON.parse(localStorage.getItem(this.key(k))) ?? def; } catch { return def; }
  },
  set(k, v) { localStorage.setItem(this.key(k), JSON.stringify(v)); },
};

const state = {
  paper: null,          // the last paper reply
  answers: new Map(),   // question id → {v: [...], marked}
  pending: new Map(store.get('pending', []).map((m) => [m.seq, m])), // seq → unacked message
  nextSeq: store.get('seq', 0) + 1,
  current: 0,
  offset: 0,            // server time − local time, ms
  deadline: null,       // Date
  ws: null,
  connected: false,
  stopped: false,       // ended or taken over: never reconnect
  backoff: 500,
  heardAt: 0,           // when the server last said anything
};

function persist() {
  store.set('pending', [...state.pending.values()]);
  store.set('seq', state.nextSeq - 1);
}

// ---- connection -----------------------------------------------------------

// pageToken names this page to the server: a reconnect carrying it
// replaces the page's own old socket quietly, where another browser's
// connection would be a second login.
const pageToken = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

const target = socketTarget('/ws/exam');

function connect() {
  if (state.stopped || state.ws) return;
  const ws = new WebSocket(target.url(`attempt=${attemptId}&page=${pageToken}`));
  state.ws = ws;
  // A socket opened while the network is down can hang half-open: give up
  // on it after 5 s and try again.
  setTimeout(() => { if (ws.readyState === WebSocket.CONNECTING) drop(ws); }, 5000);
  ws.onopen = () => {
    state.connected = true;
    state.backoff = 500;
    send({ type: 'resume', id: 'resume' });
    startPhoneView(send, $('phonebox'));
    syncTime();
    flushSignals();
    renderSave();
  };
  ws.onmessage = (ev) => {
    state.heardAt = Date.now();
    const m = JSON.parse(ev.data);
    if (target.redirected(m)) return drop(ws); // to the room's owner, at once
    onMessage(m);
  };
  ws.onclose = () => drop(ws);
}

// drop gives up on a socket (closed, silent, or the computer went offline)
// and reconnects with backoff and jitter, so a restarted server is not
// stormed. Unacknowledged answers stay in localStorage meanwhile.
function drop(ws) {
  if (ws !== state.ws) return;
  ws.onclose = ws.onmessage = null;
  try { ws.close(); } catch { /* already closed */ }
  state.ws = null;
  state.connected = false;
  renderSave();
  if (state.stopped) return;
  const wait = target.now() ? 0 : state.backoff * (0.75 + Math.random() / 2);
  state.backoff = Math.min(state.backoff * 2, 10000);
  clearTimeout(state.retry);
  state.retry = setTimeout(connect, wait);
  state.retryAt = Date.now() + wait;
}

// A watchdog: whatever happened to the timers, a page without a socket is
// never left waiting more than two seconds past its next retry.
setInterval(() => {
  if (!state.stopped && !state.ws && Date.now() > (state.retryAt || 0) + 2000) connect();
}, 2000);

// The page's heartbeat: ask for the time every 3 s. The server's outage
// credit counts from the last message it received, so a cut is credited
// within 3 s of its length. A socket can look open while the network
// under it is gone: drop it when the server has said nothing for 8 s after
// the first question it left unanswered.
setInterval(() => {
  if (!state.connected || !state.ws) return;
  if (askedAt && state.heardAt < askedAt && Date.now() - askedAt > 8000) return drop(state.ws);
  if (Date.now() - timeSentAt >= 3000) syncTime();
}, 1000);

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

let timeSentAt = 0;
let askedAt = 0; // the first time question since the server last spoke
function syncTime() {
  timeSentAt = Date.now();
  if (!askedAt || state.heardAt >= askedAt) askedAt = timeSentAt;
  send({ type: 'time', id: `t${timeSentAt}` });
}

function setClock(serverNow, deadline, sentAt) {
  const now = Date.now();
  // With a round trip known, the server's time is best matched to its middle.
  const local = sentAt ? (sentAt + now) / 2 : now;
  state.offset = new Date(serverNow).getTime() - local;
  if (deadline) state.deadline = new Date(deadline);
  tick();
}

function onMessage(m) {
  if (onProctorMessage(m, banner) || onMediaMessage(m) || onPairMessage(m)) return;
  switch (m.type) {
    case 'paper':
      if (m.status === 'in_progress') {
        startCamera(send, pageSignal, $('selfbox'), (key, kind) => banner(t(key), kind))
          .then(() => {
            const v = document.getElementById('selfview');
            if (!v) return;
            startFaceAnalysis(v, attemptId, pageSignal);
            startVoiceAnalysis(attemptId, pageSignal);
          });
        watch(); // the page is watched from the start of the exam, not in the lobby
      }
      setClock(m.server_now, m.deadline);
      state.paper = m;
      state.nextSeq = Math.max(state.nextSeq, m.last_seq + 1);
      state.answers = new Map(m.answers.map((a) => [a.q, { v: a.v, marked: a.marked, seq: a.seq }]));
      // Answers this browser still holds win over older server copies; resend them.
      for (const p of [...state.pending.values()].sort((a, b) => a.seq - b.seq)) {
        const a = state.answers.get(p.question) || { v: [], marked: false, seq: 0 };
        if (p.type === 'answer' && p.seq > a.seq) a.v = p.value;
        if (p.type === 'mark') a.marked = p.marked;
        state.answers.set(p.question, a);
        send(p);
      }
      persist();
      render();
      break;
    case 'ack':
      if (m.seq != null && state.pending.has(m.seq)) {
        state.pending.delete(m.seq);
        persist();
        renderSave();
      }
      break;
    case 'error':
      onError(m);
      break;
    case 'time':
      setClock(m.server_now, m.deadline, m.id === `t${timeSentAt}` ? timeSentAt : 0);
      break;
    case 'warning':
      banner(t('exam.warning', { minutes: m.minutes_left }), 'warn');
      break;
    case 'admission':
      if (m.state === 'admitted') banner(t('admission.admitted'), 'warn');
      else banner({ zh: `${t('admission.refused').zh} ${m.reason}`, en: `${t('admission.refused').en} ${m.reason}` }, 'error');
      send({ type: 'resume', id: 'resume' }); // the lobby's Start button follows
      break;
    case 'ended':
      ended(m);
      break;
    case 'closed':
      if (m.code === 'takeover') {
        state.stopped = true;
        stopFaceAnalysis();
        stopVoiceAnalysis();
        screen(h('div', { class: 'card center' }, biEl('h2', 'exam.stopped'), h('p', {}, m.message.zh), h('p', { class: 'en' }, m.message.en)));
      }
      if (m.code === 'session_expired') {
        // Answers not yet acknowledged stay in this browser and are sent
        // after the candidate logs in again.
        state.stopped = true;
        stopFaceAnalysis();
        stopVoiceAnalysis();
        screen(h('div', { class: 'card center', id: 'logged-out' }, h('p', {}, m.message.zh), h('p', { class: 'en' }, m.message.en),
          h('a', { class: 'button', href: '/login' }, `${t('login.submit').zh} ${t('login.submit').en}`)));
      }
      break;
  }
}

function onError(m) {
  if (m.seq != null) {
    // The server refused this message for good (late, ended, malformed):
    // keeping it would resend it forever. Say so.
    const p = state.pending.get(m.seq);
    state.pending.delete(m.seq);
    persist();
    renderSave();
    if (m.code === 'unavailable') { // not stored, not refused: resend later
      if (p) { state.pending.set(m.seq, p); persist(); setTimeout(() => send(p), 1000); }
      return;
    }
  }
  if (m.code === 'attempt_ended') {
    send({ type: 'resume', id: 'resume' });
    return;
  }
  if (m.id === 'start') { const b = $('start'); if (b) b.disabled = false; } // let them try again once admitted
  const detail = m.code === 'refused' && m.detail ? ` ${m.detail.split(': ').pop()}` : '';
  banner({ zh: t('exam.refused').zh + m.message.zh + detail, en: t('exam.refused').en + m.message.en + detail }, 'error');
}

// ---- answering ------------------------------------------------------------

function queue(msg) {
  msg.seq = state.nextSeq++;
  state.pending.set(msg.seq, msg);
  persist();
  send(msg);
  renderSave();
}

function choose(q, optionId) {
  const a = state.answers.get(q.id) || { v: [], marked: false };
  let v;
  if (q.kind === 'multiple') {
    v = a.v.includes(optionId) ? a.v.filter((x) => x !== optionId) : [...a.v, optionId].sort((x, y) => x - y);
  } else {
    v = [optionId];
  }
  a.v = v;
  state.answers.set(q.id, a);
  queue({ type: 'answer', question: q.id, value: v });
  renderQuestion();
  renderNav();
}

function toggleMark(q) {
  const a = state.answers.get(q.id) || { v: [], marked: false };
  a.marked = !a.marked;
  state.answers.set(q.id, a);
  queue({ type: 'mark', question: q.id, marked: a.marked });
  renderQuestion();
  renderNav();
}

// ---- rendering ------------------------------------------------------------

// rich renders question text: plain text, with [img:<sha256>.<ext>] shown as
// the uploaded image. Nothing else is interpreted, so no markup gets in.
const imgRef = /\[img:([0-9a-f]{64}\.(?:png|jpg|gif|webp))\]/g;
function rich(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(imgRef)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    out.push(h('img', { src: `/bank-images/${m[1]}`, alt: '', class: 'qimg' }));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

function screen(...children) { $('screen').replaceChildren(...children); }

function banner(text, kind) {
  const b = $('banner');
  bi(b, text);
  b.className = `banner ${kind}`;
  b.hidden = false;
  clearTimeout(banner.timer);
  banner.timer = setTimeout(() => { b.hidden = true; }, 15000);
}

function renderSave() {
  const el = $('save');
  const n = state.pending.size;
  if (n === 0) { bi(el, 'exam.saved'); el.className = 'save ok'; return; }
  if (state.connected) { bi(el, 'exam.saving'); el.className = 'save busy'; return; }
  bi(el, 'exam.offline'); el.className = 'save offline';
}

function render() {
  const p = state.paper;
  $('title').replaceChildren(document.createTextNode(p.title_zh + ' '), span('en', p.title_en));
  // In the lobby the bar does not stick (there is no clock yet), so it never
  // covers the steps on a small screen.
  $('exam').classList.toggle('lobby-mode', p.status === 'not_started');
  if (p.status === 'not_started') return renderLobby();
  if (p.status !== 'in_progress') return ended({ status: p.status, reason: p.end_reason, score: p.score, kind: p.kind });
  const qs = p.questions;
  state.current = Math.min(state.current, qs.length - 1);
  screen(
    h('div', { class: 'exam-body' },
      h('section', { class: 'question', id: 'question' }),
      h('aside', { class: 'nav' },
        biEl('h3', 'exam.navigator'),
        h('div', { class: 'grid', id: 'grid' }),
        h('div', { class: 'legend' },
          h('span', { class: 'cell answered' }, ''), biEl('span', 'exam.legend.answered'),
          h('span', { class: 'cell' }, ''), biEl('span', 'exam.legend.unanswered'),
          h('span', { class: 'cell marked' }, ''), biEl('span', 'exam.legend.marked')),
        biEl('button', 'exam.submit', {}, { type: 'button', class: 'primary danger', id: 'submit', onclick: confirmSubmit }),
        biEl('p', 'exam.keys', {}, { class: 'hint' }))));
  renderQuestion();
  renderNav();
}

function renderLobby() {
  const p = state.paper;
  if (p.kind !== 'mock') {
    renderJourney(screen, { attempt: attemptId, paper: p, serverNow: () => Date.now() + state.offset, send, start: () => send({ type: 'start', id: 'start' }) });
    return;
  }
  const opens = p.opens_at && new Date(p.opens_at).getTime() > Date.now() + state.offset;
  const start = biEl('button', 'exam.start', {}, { type: 'button', class: 'primary', id: 'start' });
  start.disabled = opens;
  start.onclick = () => { start.disabled = true; send({ type: 'start', id: 'start' }); };
  screen(h('div', { class: 'card center lobby' },
    biEl('h2', 'exam.lobby'),
    biEl('p', 'exam.lobby.text', { minutes: p.duration_minutes }),
    opens ? biEl('p', 'exam.lobby.wait', { time: fmtTime(p.opens_at) }) : '',
    start));
}

function renderQuestion() {
  const qs = state.paper.questions;
  const q = qs[state.current];
  const a = state.answers.get(q.id) || { v: [], marked: false };
  const sec = state.paper.sections[q.section];
  const letters = 'ABCDEFGH';
  const opts = q.options.map((o, i) => {
    const chosen = a.v.includes(o.id);
    return h('li', {},
      h('button', { type: 'button', class: `option${chosen ? ' chosen' : ''}`, 'aria-pressed': String(chosen), 'data-option': o.id, onclick: () => choose(q, o.id) },
        h('span', { class: 'letter' }, letters[i]), h('span', { class: 'text' }, rich(o.text))));
  });
  $('question').replaceChildren(
    h('div', { class: 'qhead' },
      h('span', { class: 'section' }, `${sec.title_zh} `, span('en', sec.title_en)),
      biEl('strong', 'exam.question', { n: state.current + 1 }),
      biEl('span', `exam.kind.${q.kind}`, {}, { class: 'kind' }),
      biEl('span', 'exam.points', { points: q.points }, { class: 'points' })),
    h('p', { class: 'stem', id: 'stem' }, rich(q.stem)),
    h('ol', { class: 'options' }, opts),
    h('div', { class: 'qfoot' },
      biEl('button', 'exam.prev', {}, { type: 'button', disabled: state.current === 0, onclick: () => go(state.current - 1) }),
      biEl('button', a.marked ? 'exam.unmark' : 'exam.mark', {}, { type: 'button', class: a.marked ? 'marked' : '', onclick: () => toggleMark(q) }),
      biEl('button', 'exam.next', {}, { type: 'button', disabled: state.current === qs.length - 1, onclick: () => go(state.current + 1) })));
}

function renderNav() {
  const grid = $('grid');
  if (!grid) return;
  grid.replaceChildren(...state.paper.questions.map((q, i) => {
    const a = state.answers.get(q.id);
    const cls = ['cell', a && a.v.length ? 'answered' : '', a && a.marked ? 'marked' : '', i === state.current ? 'current' : ''].join(' ');
    return h('button', { type: 'button', class: cls, 'aria-label': `${i + 1}`, onclick: () => go(i) }, String(i + 1));
  }));
}

function go(i) {
  state.current = Math.max(0, Math.min(i, state.paper.questions.length - 1));
  renderQuestion();
  renderNav();
}

function confirmSubmit() {
  const qs = state.paper.questions;
  const unanswered = qs.map((q, i) => [q, i]).filter(([q]) => !(state.answers.get(q.id)?.v.length)).map(([, i]) => i + 1);
  const marked = qs.filter((q) => state.answers.get(q.id)?.marked).length;
  const body = [];
  if (state.pending.size) body.push(biEl('p', 'exam.confirm.pending', { n: state.pending.size }, { class: 'alert error' }));
  body.push(unanswered.length
    ? biEl('p', 'exam.confirm.unanswered', { n: unanswered.length, list: unanswered.join(', ') })
    : biEl('p', 'exam.confirm.all'));
  if (marked) body.push(biEl('p', 'exam.confirm.marked', { n: marked }));
  body.push(biEl('p', 'exam.confirm.final', {}, { class: 'strong' }));
  bi($('confirm-title'), 'exam.confirm.title');
  $('confirm-body').replaceChildren(...body);
  bi($('confirm-no'), 'exam.confirm.no');
  const yes = $('confirm-yes');
  bi(yes, 'exam.confirm.yes');
  yes.disabled = state.pending.size > 0 || !state.connected;
  $('confirm').showModal();
}

$('confirm-no').onclick = () => $('confirm').close();
$('confirm-yes').onclick = () => {
  $('confirm').close();
  send({ type: 'submit', id: 'submit' });
};

function ended(m) {
  state.stopped = true;
  stopFaceAnalysis();
  stopVoiceAnalysis();
  state.deadline = null;
  if (state.ws) state.ws.close();
  $('remaining').textContent = '--:--';
  const lines = [biEl('h2', 'exam.ended.title'), biEl('p', `status.${m.status}`, {}, { class: 'status' })];
  if (m.status === 'terminated' && m.reason) lines.push(h('p', { class: 'alert error' }, m.reason));
  lines.push(m.kind === 'mock' && m.score != null ? biEl('p', 'exam.ended.score', { score: m.score }) : biEl('p', 'exam.ended.formal'));
  lines.push(biEl('a', 'exam.ended.home', {}, { class: 'button', href: '/candidate' }));
  screen(h('div', { class: 'card center', id: 'ended' }, ...lines));
  $('confirm').open && $('confirm').close();
}

// ---- clock and keys -------------------------------------------------------

function tick() {
  if (!state.deadline) return;
  const left = Math.max(0, state.deadline.getTime() - (Date.now() + state.offset));
  const s = Math.floor(left / 1000);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  $('remaining').textContent = `${hh ? hh + ':' : ''}${String(mm).padStart(2, '0')}:${String(ss).padStart(2, '0')}`;
  $('clock').className = `clock${s < 300 ? ' low' : ''}`;
}
setInterval(tick, 250);

document.addEventListener('keydown', (ev) => {
  if (!state.paper || state.paper.status !== 'in_progress' || state.stopped || $('confirm').open) return;
  if (ev.target instanceof HTMLInputElement) return;
  const q = state.paper.questions[state.current];
  const k = ev.key.toUpperCase();
  if (ev.key === 'ArrowRight') go(state.current + 1);
  else if (ev.key === 'ArrowLeft') go(state.current - 1);
  else if (k === 'M') toggleMark(q);
  else {
    const i = 'ABCDEFGH'.indexOf(k) >= 0 ? 'ABCDEFGH'.indexOf(k) : '12345678'.indexOf(ev.key);
    if (i >= 0 && i < q.options.length) choose(q, q.options[i].id);
    else return;
  }
  ev.preventDefault();
});

window.addEventListener('offline', () => state.ws && drop(state.ws));
// Back online: try at once rather than after the backoff, replacing a
// socket still trying to open.
window.addEventListener('online', () => {
  state.backoff = 500;
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN) return;
  if (ws) {
    ws.onclose = ws.onmessage = null;
    try { ws.close(); } catch { /* already closed */ }
    state.ws = null;
  }
  clearTimeout(state.retry);
  connect();
});
let watching = false;
function watch() {
  if (!watching) startWatching((msg) => !state.stopped && send(msg), attemptId);
  watching = true;
}
bi($('loading'), 'exam.loading');
bi($('clock-label'), 'exam.time_left');
renderSave();
connect();
