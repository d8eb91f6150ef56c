// What the exam page tells the invigilator, and what it shows the candidate
// from the invigilator. Signals go to the server as they happen (queued
// while offline, with the duration the page measured); nothing is hidden
// from the candidate: every flag raised is shown on their page.
import { t, bi, h, biEl } from './i18n.js';

let send = () => false;
const queue = [];
const open = new Map(); // kind → start time (ms)
let sigId = 0;

// pageSignal lets other modules (the camera, face analysis) report signals too.
export function pageSignal(kind, phase, detail = {}) { signal(kind, phase, detail); }

function signal(kind, phase, detail = {}) {
  const now = Date.now();
  if (phase === 'start') {
    if (open.has(kind)) return;
    open.set(kind, now);
  } else if (phase === 'end') {
    if (!open.has(kind)) return;
    detail.duration_ms = now - open.get(kind);
    open.delete(kind);
  }
  const msg = { type: 'signal', id: `sig${++sigId}`, kind, phase, detail };
  if (!send(msg)) queue.push(msg);
}

// flush sends what was noticed while the socket was down.
export function flushSignals() {
  while (queue.length && send(queue[0])) queue.shift();
}

// startWatching begins reporting; sender(msg) returns whether it was sent.
export function startWatching(sender, attemptId) {
  send = sender;
  const reloadKey = `examhall:loaded:${attemptId}`;
  if (sessionStorage.getItem(reloadKey)) signal('page_reload', 'instant');
  sessionStorage.setItem(reloadKey, '1');

  document.addEventListener('visibilitychange', () => signal('page_hidden', document.hidden ? 'start' : 'end'));
  window.addEventListener('blur', () => signal('window_blur', 'start'));
  window.addEventListener('focus', () => signal('window_blur', 'end'));
  for (const ev of ['copy', 'cut', 'paste']) {
    document.addEventListener(ev, (e) => { e.preventDefault(); signal(ev, 'instant'); });
  }
  document.addEventListener('contextmenu', (e) => { e.preventDefault(); signal('context_menu', 'instant'); });
  window.addEventListener('keyup', (e) => { if (e.key === 'PrintScreen') signal('print_screen', 'instant'); });
  window.addEventListener('offline', () => signal('network_offline', 'start'));
  window.addEventListener('online', () => signal('network_offline', 'end'));

  // More than one screen, where the browser can tell.
  const screens = () => { if (window.screen.isExtended) signal('multiple_screens', 'instant'); };
  screens();
  if (window.screen.addEventListener) window.screen.addEventListener('change', screens);

  // Developer tools, best effort: docked tools shrink the page's viewport.
  // Measured against the page's own start (and again after a zoom, which
  // changes the ratio), so browser zoom, toolbars or a headless window
  // are not taken for developer tools.
  let devtools = false;
  let base = null;
  setInterval(() => {
    const gap = { w: window.outerWidth - window.innerWidth, h: window.outerHeight - window.innerHeight, dpr: window.devicePixelRatio };
    if (!base || base.dpr !== gap.dpr) base = gap;
    const open = gap.w - base.w > 200 || gap.h - base.h > 250;
    if (open && !devtools) signal('devtools_open', 'instant');
    devtools = open;
  }, 2000);

  // Full screen: offered at once whenever it is left.
  const fsBar = h('div', { class: 'banner warn fsbar', role: 'alert', hidden: true },
    biEl('span', 'watch.fullscreen'), ' ',
    biEl('button', 'watch.fullscreen.enter', {}, { type: 'button', class: 'primary', onclick: () => document.documentElement.requestFullscreen?.().catch(() => {}) }));
  document.getElementById('exam').prepend(fsBar);
  let wasFull = false;
  document.addEventListener('fullscreenchange', () => {
    const full = !!document.fullscreenElement;
    if (full) { wasFull = true; signal('fullscreen_exit', 'end'); } else if (wasFull) signal('fullscreen_exit', 'start');
    fsBar.hidden = full;
  });
  fsBar.hidden = !!document.fullscreenElement;
}

// onProctorMessage shows an invigilator's message or warning in a modal the
// candidate must acknowledge. It returns true if it handled m.
export function onProctorMessage(m, banner) {
  if (m.type === 'notice') {
    banner(m.message, m.severity === 'critical' ? 'error' : 'warn');
    return true;
  }
  if (m.type !== 'proctor_message') return false;
  if (document.querySelector(`dialog[data-message="${m.id}"]`)) return true;
  const title = m.kind === 'warning' ? biEl('h2', 'watch.warning', { n: m.warnings }) : biEl('h2', 'watch.message');
  const dlg = h('dialog', { class: `confirm proctor-msg ${m.kind}`, 'data-message': m.id },
    title, h('p', { class: 'body' }, m.body),
    h('div', { class: 'confirm-actions' },
      biEl('button', 'watch.ack', {}, { type: 'button', class: 'primary', onclick: () => {
        send({ type: 'message_ack', id: `ack${m.id}`, message_id: m.id });
        dlg.close();
        dlg.remove();
      } })));
  dlg.addEventListener('cancel', (e) => e.preventDefault()); // Esc does not dismiss it
  document.body.append(dlg);
  dlg.showModal();
  return true;
}
