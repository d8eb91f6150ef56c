// The evidence frames of a flag (face analysis stills), as thumbnails that
// open the full frame. Only staff who may watch the candidate get them.
import { h } from './i18n.js';

// stillsOf returns the thumbnails of a flag's last three stills, or nothing.
export function stillsOf(f) {
  const names = (Array.isArray(f.evidence) ? f.evidence : []).filter((o) => o.still).map((o) => o.still).slice(-3);
  if (!names.length) return [];
  return h('div', { class: 'stills' }, ...names.map((n) => {
    const url = `/api/attempts/${f.attempt_id}/stills/${encodeURIComponent(n)}`;
    return h('a', { href: url, target: '_blank', rel: 'noopener' }, h('img', { src: url, alt: n, loading: 'lazy', class: 'still' }));
  }));
}
