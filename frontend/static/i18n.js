// The one dictionary (i18n.json), shared with the server's templates.
// Every string on a page goes through t(): Chinese first, English beside it.
let dict = {};

export async function loadDictionary() {
  const r = await fetch('/static/i18n.json', { cache: 'no-cache' });
  dict = await r.json();
}

// t returns {zh, en} for key with {name} placeholders filled from vars.
export function t(key, vars = {}) {
  const e = dict[key] || { zh: key, en: key };
  const fill = (s) => s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
  return { zh: fill(e.zh), en: fill(e.en) };
}

// bi renders a bilingual text into el (Chinese, then English in a span).
export function bi(el, key, vars) {
  const { zh, en } = typeof key === 'string' ? t(key, vars) : key;
  el.replaceChildren(document.createTextNode(zh + ' '), span('en', en));
  return el;
}

export function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

// h builds an element: h('button', {class: 'x', onclick}, child...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v !== false && v != null) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function biEl(tag, key, vars, attrs = {}) {
  return bi(h(tag, attrs), key, vars);
}

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || '';
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return d.toLocaleString('zh-CN', { hour12: false });
}
