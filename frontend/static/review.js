// Replaying an attempt: the PC and phone recordings side by side on one
// clock (one play/pause/seek/speed control), gaps shown as technical
// interruptions, every flag and exam event on the timeline; decisions per
// flag and for the attempt.
import { loadDictionary, t, bi, h, biEl, span, csrfToken, fmtTime } from './i18n.js';
import { stillsOf } from './stills.js';

await loadDictionary();
const root = document.getElementById('review');
const id = Number(new URLSearchParams(location.search).get('id'));
const data = await (await fetch(`/api/review/attempts/${id}`)).json();
const tl = data.timeline;
const origin = new Date(tl.origin || data.started_at || Date.now()).getTime();
const state = { clock: 0, playing: false, speed: 1, last: 0 };

async function post(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'X-CSRF-Token': csrfToken(), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const d = await r.json().catch(() => ({}));
  if (!r.ok) throw d;
  return d;
}

// ---- the players ------------------------------------------------------------

function player(device) {
  const v = h('video', { playsinline: true, preload: 'auto', class: 'replay', 'data-device': device });
  v.muted = device !== 'pc';
  const gap = biEl('div', 'review.gap', {}, { class: 'gapnote', hidden: true });
  const box = h('div', { class: 'player' }, biEl('div', device === 'pc' ? 'review.cam.pc' : 'review.cam.phone', {}, { class: 'plabel' }), v, gap);
  return { device, v, gap, box, seg: null };
}
const players = [player('pc'), player('phone')];

// segmentAt finds what a device shows at the clock: its file and the
// position in it, or nothing in a gap.
function segmentAt(device, ms) {
  return tl.segments.find((s) => s.device === device && ms >= s.start_ms && ms < s.end_ms) || null;
}

function sync() {
  for (const p of players) {
    const s = segmentAt(p.device, state.clock);
    p.gap.hidden = !!s || state.clock === 0;
    if (!s) { p.v.pause(); p.seg = null; p.v.hidden = true; continue; }
    p.v.hidden = false;
    const pos = (state.clock - s.start_ms) / 1000;
    if (p.seg !== s.recording_id) {
      p.seg = s.recording_id;
      p.v.src = `/api/recordings/${s.recording_id}`;
      p.v.currentTime = pos;
    } else if (Math.abs(p.v.currentTime - pos) > 0.35) {
      p.v.currentTime = pos;
    }
    p.v.playbackRate = state.speed;
    if (state.playing && p.v.paused) p.v.play().catch(() => {});
    if (!state.playing && !p.v.paused) p.v.pause();
  }
  seek.value = String(state.clock);
  clockText.textContent = `${fmt(state.clock)} / ${fmt(tl.duration_ms)}`;
}

function frame(now) {
  if (state.playing) {
    state.clock = Math.min(tl.duration_ms, state.clock + (now - state.last) * state.speed);
    if (state.clock >= tl.duration_ms) state.playing = false;
  }
  state.last = now;
  sync();
  requestAnimationFrame(frame);
}

const fmt = (ms) => { const s = Math.floor(ms / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`; };

// ---- controls and timeline ----------------------------------------------------

const playBtn = biEl('button', 'review.play', {}, { type: 'button', id: 'play', onclick: () => toggle() });
const seek = h('input', { type: 'range', min: 0, max: tl.duration_ms || 0, step: 100, id: 'seek', oninput: () => { state.clock = Number(seek.value); } });
const speed = h('select', { id: 'speed', onchange: () => { state.speed = Number(speed.value); } },
  ...[0.5, 1, 2, 4, 8].map((x) => h('option', { value: x, selected: x === 1 }, `${x}×`)));
const clockText = h('span', { class: 'mono', id: 'clock' });

function toggle() {
  state.playing = !state.playing;
  bi(playBtn, state.playing ? 'review.pause' : 'review.play');
}

const flagAt = (f) => new Date(f.first_at).getTime() - origin;
const flags = [...data.flags].sort((a, b) => flagAt(a) - flagAt(b));
function goTo(f) { state.clock = Math.max(0, flagAt(f) - 3000); }

const bar = h('div', { class: 'tbar', id: 'tbar' },
  ...tl.segments.map((s) => h('div', { class: `seg ${s.device}` })),
  ...flags.map((f) => h('button', { type: 'button', class: `tflag sev-${f.severity}`, title: `${f.reason.zh} / ${f.reason.en}`, 'data-flag': f.id, onclick: () => goTo(f) })),
  ...data.events.map((e) => h('span', { class: 'tevent', title: `${e.kind} ${fmtTime(e.at)}` })));
function layoutBar() {
  const w = (ms) => `${Math.max(0, Math.min(100, (ms / (tl.duration_ms || 1)) * 100))}%`;
  const segs = bar.querySelectorAll('.seg');
  tl.segments.forEach((s, i) => { segs[i].style.left = w(s.start_ms); segs[i].style.width = `calc(${w(s.end_ms - s.start_ms)})`; });
  bar.querySelectorAll('.tflag').forEach((el, i) => { el.style.left = w(flagAt(flags[i])); });
  bar.querySelectorAll('.tevent').forEach((el, i) => { el.style.left = w(new Date(data.events[i].at).getTime() - origin); });
}

// CSP allows no inline styles in markup, but the CSSOM is fine.
document.addEventListener('keydown', (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
  if (e.key === ' ') { toggle(); e.preventDefault(); }
  if (e.key === 'ArrowRight') state.clock = Math.min(tl.duration_ms, state.clock + 5000);
  if (e.key === 'ArrowLeft') state.clock = Math.max(0, state.clock - 5000);
  if (e.key === 'n') { const f = flags.find((f) => flagAt(f) - 3000 > state.clock + 100); if (f) goTo(f); }
  if (e.key === 'p') { const f = [...flags].reverse().find((f) => flagAt(f) - 3000 < state.clock - 100); if (f) goTo(f); }
});

// ---- decisions ----------------------------------------------------------------

function flagList() {
  return h('ol', { class: 'history', id: 'flaglist' }, ...flags.map((f) => {
    const note = h('input', { placeholder: `${t('console.note').zh} ${t('console.note').en}` });
    const decide = (d) => async () => { try { await post(`/api/proctor/flags/${f.id}/decision`, { decision: d, note: note.value }); f.status = d === 'confirm' ? 'confirmed' : 'dismissed'; f.note = note.value; render(); } catch (e) { alert(e.error?.message.zh || e); } };
    return h('li', { class: `sev-${f.severity}`, 'data-flag': f.id, onclick: (ev) => { if (ev.target.tagName !== 'INPUT' && ev.target.tagName !== 'BUTTON') goTo(f); } },
      h('div', {}, h('span', { class: 'mono' }, fmt(flagAt(f))), ' ', biEl('strong', `severity.${f.severity}`), ' ', f.reason.zh, ' ', span('en', f.reason.en)),
      stillsOf(f),
      f.status === 'open'
        ? h('div', { class: 'decide' }, note, biEl('button', 'console.confirm', {}, { type: 'button', onclick: decide('confirm') }), biEl('button', 'console.dismiss', {}, { type: 'button', onclick: decide('dismiss') }))
        : h('div', { class: 'hint' }, biEl('span', `flagstatus.${f.status}`), f.note ? ` · ${f.note}` : ''));
  }));
}

function decisionForm() {
  const reason = h('input', { id: 'review-reason', maxlength: 500 });
  const msg = h('div', { id: 'review-msg' });
  const act = (decision) => async () => {
    try { await post(`/api/review/attempts/${id}/decision`, { decision, reason: reason.value }); data.decision = { decision, reason: reason.value }; render(); }
    catch (e) { msg.replaceChildren(h('div', { class: 'alert error' }, e.error ? `${e.error.message.zh} ${e.error.message.en}` : String(e))); }
  };
  return h('div', { class: 'actions end' },
    data.decision ? biEl('p', `review.${data.decision.decision}`, {}, { class: 'alert notice', id: 'decided' }) : '',
    h('label', {}, biEl('span', 'review.reason'), reason),
    biEl('button', 'review.valid', {}, { type: 'button', id: 'decide-valid', onclick: act('valid') }),
    biEl('button', 'review.invalid', {}, { type: 'button', id: 'decide-invalid', class: 'primary danger', onclick: act('invalid') }),
    msg);
}

function render() {
  root.replaceChildren(
    h('h1', {}, data.attempt.name, h('span', { class: 'mono' }, ` ${data.attempt.ticket}`), ' ', biEl('span', `status.${data.status}`, {}, { class: 'hint' }),
      ' ', biEl('a', 'review.report', {}, { href: `/review/report?id=${id}`, class: 'button' })),
    h('div', { class: 'players' }, ...players.map((p) => p.box)),
    h('div', { class: 'controls' }, playBtn, speed, clockText, seek),
    bar,
    biEl('p', 'review.keys', {}, { class: 'hint' }),
    biEl('h2', 'console.history'), flagList(),
    biEl('h2', 'review.decision'), decisionForm());
  layoutBar();
}

render();
requestAnimationFrame(frame);
