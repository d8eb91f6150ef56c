// Pairing the phone camera from the PC page: a single-use QR code, and the
// phone's live picture beside the PC's own, with the placement guide.
import { candidateQueue } from './rtc.js';
import { biEl, bi, h } from './i18n.js';

let send = () => false;
let viewPC = null;
let viewQueue = null;
let phoneStream = null;
const previews = new Set();

// startPhoneView asks the server to forward this attempt's phone camera to
// the page (again after each reconnect) and puts the pairing button in box.
export function startPhoneView(sender, box) {
  send = sender;
  if (box && !box.dataset.ready) {
    box.dataset.ready = '1';
    const v = h('video', { autoplay: true, muted: true, playsinline: true, class: 'phoneview', id: 'phoneview' });
    previews.add(v);
    box.replaceChildren(v, biEl('button', 'pair.button', {}, { type: 'button', id: 'pair', onclick: () => send({ type: 'pair', id: 'pair' }) }));
  }
  send({ type: 'phone_view', id: 'pv' });
}

let onPhone = () => {};

// phonePreview returns a video element that shows the phone's picture, and
// calls changed(live) whenever the phone's picture comes or goes.
export function phonePreview(changed) {
  for (const old of previews) if (!old.isConnected) previews.delete(old); // from steps closed since
  const v = h('video', { autoplay: true, muted: true, playsinline: true, class: 'phoneview' });
  previews.add(v);
  if (changed) onPhone = changed;
  attach();
  return v;
}

function attach() {
  onPhone(!!phoneStream);
  for (const v of previews) if (v.srcObject !== phoneStream) v.srcObject = phoneStream;
  const st = document.getElementById('pair-status');
  if (st) bi(st, phoneStream ? 'pair.connected' : 'pair.waiting');
}

// onPairMessage handles pairing and the phone's forwarded video.
export function onPairMessage(m) {
  switch (m.type) {
    case 'pair': {
      const preview = h('video', { autoplay: true, muted: true, playsinline: true, class: 'selfview' });
      previews.add(preview);
      const dlg = h('dialog', { class: 'confirm pairdlg', id: 'pairdlg' },
        biEl('h2', 'pair.title'),
        h('div', { class: 'pairbox' }, h('img', { src: m.qr, alt: m.url, id: 'pair-qr' }),
          h('div', {}, biEl('p', 'pair.text'), h('p', { class: 'mono hint', id: 'pair-url' }, m.url),
            biEl('p', 'pair.waiting', {}, { id: 'pair-status', role: 'status' }), preview)),
        h('ul', { class: 'checklist' }, biEl('li', 'phone.check.place'), biEl('li', 'phone.check.frame'), biEl('li', 'phone.check.charge')),
        h('div', { class: 'confirm-actions' }, biEl('button', 'console.close', {}, { type: 'button', onclick: () => { dlg.close(); dlg.remove(); previews.delete(preview); } })));
      document.body.append(dlg);
      dlg.showModal();
      attach();
      return true;
    }
    case 'view_ready':
      viewPC?.close();
      viewPC = new RTCPeerConnection({ iceServers: m.ice_servers || [] });
      viewQueue = candidateQueue(viewPC);
      viewPC.onicecandidate = (e) => { if (e.candidate) send({ type: 'view_ice', candidate: e.candidate.toJSON() }); };
      viewPC.ontrack = (e) => {
        phoneStream = e.streams[0] || new MediaStream([e.track]);
        e.track.onended = () => { phoneStream = null; attach(); };
        attach();
      };
      return true;
    case 'view_offer':
      viewPC.setRemoteDescription({ type: 'offer', sdp: m.sdp })
        .then(() => viewQueue.described())
        .then(() => viewPC.createAnswer())
        .then((a) => viewPC.setLocalDescription(a).then(() => send({ type: 'view_answer', sdp: a.sdp })));
      return true;
    case 'view_ice':
      viewQueue?.add(m.candidate);
      return true;
  }
  return false;
}
