// The evidence of a flag: face analysis stills as thumbnails that open the
// full frame, talking clips as players. Only staff who may watch the
// candidate get them.
import { h } from './i18n.js';

// stillsOf returns the thumbnails of a flag's last three stills, or nothing.
export function stillsOf(f) {
  const shots = (Array.isArray(f.evidence) ? f.evidence : []).filter((o) => o.still).slice(-3);
  if (!shots.length) return [];
  return h('div', { class: 'stills' }, ...shots.map((o) => {
    const url = `/api/attempts/${f.attempt_id}/stills/${encodeURIComponent(o.still)}`;
    const label = [new Date(o.at).toLocaleTimeString('zh-CN', { hour12: false }), o.note].filter(Boolean).join(' ');
    if (o.still.endsWith('.wav')) { // the sound of a talking flag
      return h('audio', { src: url, controls: true, preload: 'none', title: label, class: 'clip' });
    }
    return h('a', { href: url, target: '_blank', rel: 'noopener', title: label },
      h('img', { src: url, alt: label, loading: 'lazy', class: 'still' }));
  }));
}
