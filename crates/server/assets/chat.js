// HireCJ chat: a thin client of the chat WebSocket (docs/protocol.md, v1).
//
// The server is authoritative. This module only shows what it sends:
// CJ's messages from the server's sanitized `html`, merchant text with
// textContent, the streaming reply as plain text. Every stored message has a
// sequence number; the page keeps the highest one it has shown and resumes
// from it after a dropped connection (start_conversation {conversation_id,
// last_seq}), so nothing is shown twice and nothing is lost. Merchant
// messages not yet acknowledged are resent with the same client_id.

const PROTOCOL = 1;
const MAX_MESSAGE_CHARS = 8000;
const PENDING_KEY = 'hirecj.pending';
const SHOP_SUFFIX = '.myshopify.com';
const ADMIN_PREFIX = 'admin.shopify.com/store/';
const STORE_RETRY_MS = 3000; // resend after `store_unavailable`

const $ = (id) => document.getElementById(id);
const els = {
  transcript: $('transcript'),
  status: $('status'),
  form: $('composer'),
  input: $('input'),
  send: $('send'),
  suggestions: $('suggestions'),
  connection: $('connection'),
  chatError: $('chat-error'),
  jump: $('jump-latest'),
  debugToggle: $('debug-toggle'),
  debugPanel: $('debug-panel'),
  debugTraces: $('debug-traces'),
  debugRefresh: $('debug-refresh'),
  oauthRetry: $('oauth-retry'),
  oauthBanner: $('oauth-error'),
  connectTemplate: $('connect-template'),
};

const params = new URLSearchParams(location.search);
const state = {
  ws: null,
  open: false, // conversation_started received on the current socket
  conversationId: params.get('conversation_id') || null,
  workflow: null,
  lastSeq: 0,
  bySeq: new Map(), // seq -> element shown
  pending: new Map(), // client_id -> { text, el }
  stream: null, // { turn, el, text }
  replying: false,
  attempts: 0,
  reconnectTimer: null,
  storeConnected: document.body.dataset.storeConnected === 'true',
  signedIn: Boolean(document.body.dataset.userId),
  debug: false,
  workflows: [],
  composing: false,
  dropOnDelta: false,
  framesReceived: 0,
  sessionEnded: false, // signed out or expired: no reconnecting
};

// ---------------------------------------------------------------- helpers

function newClientId() {
  const rand = globalThis.crypto?.randomUUID
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `c-${rand}`;
}

/** A workflow's title from its YAML (via /api/v1/workflows), else its name made readable. */
function humanize(name) {
  const known = state.workflows.find((w) => w.name === name);
  if (known && known.title) return known.title;
  const s = String(name || '').replace(/[_-]+/g, ' ').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : 'Workflow';
}

function setStatus(text) {
  els.status.textContent = text || '';
}

let errorTimer = null;
function showError(text, { sticky = false } = {}) {
  els.chatError.textContent = text;
  els.chatError.hidden = !text;
  clearTimeout(errorTimer);
  if (text && !sticky) errorTimer = setTimeout(() => { els.chatError.hidden = true; }, 8000);
}

function setOffline(offline) {
  els.connection.hidden = !offline;
  els.connection.textContent = offline ? 'Offline — reconnecting…' : '';
  document.body.classList.toggle('offline', offline);
}

function setReplying(on) {
  state.replying = on;
  syncButton();
  if (!on) {
    setStatus('');
    sendQueued();
  }
  renderSuggestions();
}

// One button: Stop while CJ replies and nothing is typed, Send otherwise
// (a message typed during a reply waits for its end).
function syncButton() {
  const stop = state.replying && !els.input.value.trim();
  els.send.dataset.mode = stop ? 'stop' : 'send';
  els.send.textContent = stop ? 'Stop' : 'Send';
  els.send.classList.toggle('primary', !stop);
}

// A message typed while CJ was answering goes once the reply has ended.
function sendQueued() {
  if (state.replying || !state.open) return;
  for (const [clientId, p] of state.pending) {
    if (!p.queued) continue;
    p.queued = false;
    p.el.classList.remove('queued');
    sendFrame({ type: 'message', text: p.text, client_id: clientId });
    state.replying = true;
    syncButton();
    setStatus('CJ is thinking…');
    return;
  }
}

// ---------------------------------------------------------------- scrolling

function nearBottom() {
  const t = els.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

function scrollToBottom() {
  els.transcript.scrollTop = els.transcript.scrollHeight;
  els.jump.hidden = true;
}

// Runs `change` and keeps the view pinned to the newest message only when
// the merchant was already there (or `force`): never yanks someone who
// scrolled up to read.
function withScroll(change, force = false) {
  const stick = force || nearBottom();
  change();
  if (stick) scrollToBottom();
  else els.jump.hidden = false;
}

els.transcript.addEventListener('scroll', () => {
  if (nearBottom()) els.jump.hidden = true;
});
els.jump.addEventListener('click', () => {
  scrollToBottom();
  els.input.focus();
});

// ---------------------------------------------------------------- pending messages survive a reload

function savePending() {
  try {
    const items = [...state.pending].map(([clientId, p]) => ({ clientId, text: p.text }));
    if (items.length) {
      sessionStorage.setItem(PENDING_KEY, JSON.stringify({ conversationId: state.conversationId, items }));
    } else {
      sessionStorage.removeItem(PENDING_KEY);
    }
  } catch (_) { /* storage disabled: memory only */ }
}

function restorePending() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
    if (!saved || !Array.isArray(saved.items) || saved.conversationId !== state.conversationId) return;
    for (const { clientId, text } of saved.items) {
      if (typeof clientId === 'string' && typeof text === 'string') addPending(clientId, text);
    }
  } catch (_) { /* ignore */ }
}

// ---------------------------------------------------------------- rendering

function messageEl(role) {
  const el = document.createElement('article');
  el.className = `msg msg-${role}`;
  const meta = document.createElement('div');
  meta.className = 'msg-meta';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = role === 'merchant' ? 'You' : 'CJ';
  meta.append(who);
  const body = document.createElement('div');
  body.className = 'msg-body';
  el.append(meta, body);
  return el;
}

function bodyOf(el) {
  return el.querySelector('.msg-body');
}

// Inserts a stored message in sequence order: before any later stored
// message, pending merchant message or later streaming reply.
function insertBySeq(el, seq) {
  for (const child of els.transcript.children) {
    const s = Number(child.dataset.seq || 0);
    const later = (s && s > seq)
      || child.classList.contains('pending')
      || (child.classList.contains('streaming') && Number(child.dataset.turn || 0) > seq);
    if (later) {
      els.transcript.insertBefore(el, child);
      return;
    }
  }
  els.transcript.append(el);
}

function noteSeq(seq) {
  if (Number.isInteger(seq) && seq > state.lastSeq) state.lastSeq = seq;
}

function fillCj(el, m) {
  const body = bodyOf(el);
  // Sanitized on the server (ammonia); never built from model text here.
  body.innerHTML = typeof m.html === 'string' ? m.html : '';
  mountUiElements(body, Array.isArray(m.ui_elements) ? m.ui_elements : []);
  el.querySelector('.note')?.remove();
  if (m.status === 'stopped' || m.status === 'interrupted') {
    const note = document.createElement('p');
    note.className = 'note';
    note.textContent = m.status === 'stopped' ? '(stopped)' : '(interrupted)';
    el.append(note);
  }
  el.classList.remove('streaming');
  el.dataset.status = m.status || 'complete';
}

// CJ offering Connect Shopify to a merchant whose store is connected means
// Shopify refused its access: the header says so at once (as it does on
// the next page load), not "connected", and CJ's offer is a form.
async function checkReconnect(m) {
  const link = document.getElementById('reconnect-link');
  const offers = Array.isArray(m.ui_elements) && m.ui_elements.some((e) => e && e.type === 'oauth_button');
  if (!link || !link.hidden || !offers || !state.storeConnected) return;
  try {
    const res = await fetch('/api/v1/me', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    const me = res.ok ? await res.json() : null;
    if (me && me.needs_reconnect) {
      link.hidden = false;
      offerReconnect();
    }
  } catch (_) { /* offline: the next page load shows it */ }
}

// The store needs reconnecting: CJ's newest Connect button is a form again
// (older ones keep their "connected" note: one form, where CJ offered it).
function offerReconnect() {
  const slots = [...els.transcript.querySelectorAll('.msg-cj [data-ui-element^="oauth_button"]')];
  const newest = slots.pop();
  if (newest && !newest.querySelector('.connect-form')) newest.replaceChildren(connectForm());
}

function renderMessage(m) {
  if (!m || !Number.isInteger(m.seq)) return;
  if (m.role === 'system') { // stored for CJ, not shown
    noteSeq(m.seq);
    return;
  }
  const existing = state.bySeq.get(m.seq);
  if (existing) { // already shown: at most its status changed
    if (m.role === 'cj') fillCj(existing, m);
    noteSeq(m.seq);
    return;
  }
  withScroll(() => {
    let el = null;
    if (m.role === 'merchant') {
      for (const [clientId, p] of state.pending) {
        const same = m.client_id ? m.client_id === clientId : p.text === m.content;
        if (same) { // our unacknowledged message, stored before the drop
          el = p.el;
          state.pending.delete(clientId);
          savePending();
          break;
        }
      }
      if (!el) {
        el = messageEl('merchant');
        bodyOf(el).textContent = m.content;
        insertBySeq(el, m.seq);
      }
      el.classList.remove('pending');
    } else {
      if (state.stream && state.stream.turn === m.seq) {
        el = state.stream.el;
        state.stream = null;
      } else {
        el = messageEl('cj');
        insertBySeq(el, m.seq);
      }
      fillCj(el, m);
    }
    el.dataset.seq = String(m.seq);
    state.bySeq.set(m.seq, el);
    noteSeq(m.seq);
  });
}

function renderDelta(turn, text, restart) {
  if (state.bySeq.has(turn)) return; // the final message is already shown
  withScroll(() => {
    if (!state.stream || state.stream.turn !== turn) {
      const el = messageEl('cj');
      el.classList.add('streaming');
      el.dataset.turn = String(turn);
      // Before any message still waiting to go (typed during this reply).
      insertBySeq(el, turn);
      state.stream = { turn, el, text: '' };
    } else if (restart) {
      state.stream.text = ''; // the reply is being written again
    }
    state.stream.text += text;
    renderStreaming(bodyOf(state.stream.el), state.stream.text);
  });
  // The text itself says CJ is answering.
  if (text && !hasQueued()) setStatus('');
}

// The reply as it streams, shaped like the stored message will be:
// paragraphs, headings, lists, tables, bold and code, built from text
// nodes only (nothing the model wrote becomes HTML here; the stored
// message's sanitized html replaces it when the reply ends). Markdown
// still open at the end (a `**` not yet closed) is not shown raw.
function renderStreaming(body, text) {
  const out = document.createDocumentFragment();
  const lines = text.replace(/__(OAUTH_BUTTON|CHART)_\d+__/g, '').split('\n');
  let para = [];
  // Headings under the page's <h1>, as the stored message has them
  // (render.rs): the first an <h2>, none more than one level deeper than
  // the one before.
  let previous = 1;
  const flush = () => {
    if (!para.length) return;
    const p = document.createElement('p');
    inline(p, para.join(' '));
    out.append(p);
    para = [];
  };
  for (let i = 0; i < lines.length;) {
    const t = lines[i].trim();
    let m;
    if (!t) {
      flush();
      i += 1;
    } else if ((m = /^(#{1,6})\s+(.*)$/.exec(t))) {
      flush();
      const level = Math.max(2, Math.min(m[1].length + 1, previous + 1, 6));
      previous = level;
      const h = document.createElement(`h${level}`);
      inline(h, m[2]);
      out.append(h);
      i += 1;
    } else if (t.startsWith('|')) {
      flush();
      const rows = [];
      while (i < lines.length && lines[i].trim().startsWith('|')) rows.push(lines[i++].trim());
      out.append(streamingTable(rows));
    } else if ((m = /^([-*+]|\d+[.)])\s+/.exec(t))) {
      flush();
      const list = document.createElement(/\d/.test(m[1]) ? 'ol' : 'ul');
      while (i < lines.length && (m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]))) {
        const li = document.createElement('li');
        inline(li, m[2]);
        list.append(li);
        i += 1;
      }
      out.append(list);
    } else {
      para.push(t);
      i += 1;
    }
  }
  flush();
  body.replaceChildren(out);
}

function cells(row) {
  return row.replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

function streamingTable(rows) {
  const table = document.createElement('table');
  const rule = rows.findIndex((r) => /^\|?[\s:|-]+\|?$/.test(r) && r.includes('-'));
  const align = rule > 0 ? cells(rows[rule]).map((c) => {
    if (c.startsWith(':') && c.endsWith(':')) return 'align-center';
    return c.endsWith(':') ? 'align-right' : '';
  }) : [];
  rows.forEach((row, r) => {
    if (r === rule) return;
    const head = rule > 0 && r < rule;
    const tr = document.createElement('tr');
    cells(row).forEach((c, k) => {
      const cell = document.createElement(head ? 'th' : 'td');
      if (align[k]) cell.className = align[k];
      inline(cell, c);
      tr.append(cell);
    });
    let section = table.querySelector(head ? 'thead' : 'tbody');
    if (!section) {
      section = document.createElement(head ? 'thead' : 'tbody');
      table.append(section);
    }
    section.append(tr);
  });
  return table;
}

// A link as the stored message will have it: an http(s) address opens
// beside the chat; anything else is its text only.
function link(label, href) {
  let url = null;
  try {
    url = new URL(href);
  } catch (_) {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return document.createTextNode(label);
  }
  const a = document.createElement('a');
  a.href = url.href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer nofollow';
  a.textContent = label;
  return a;
}

function inline(el, text) {
  for (const part of text.split(/(\*\*[^*]+\*\*|`[^`]+`|\[[^\]]+\]\([^)\s]+\))/)) {
    if (!part) continue;
    let node;
    const m = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(part);
    if (m) {
      node = link(m[1], m[2]);
    } else if (part.startsWith('**') && part.endsWith('**') && part.length > 4) {
      node = document.createElement('strong');
      node.textContent = part.slice(2, -2);
    } else if (part.startsWith('`') && part.endsWith('`') && part.length > 2) {
      node = document.createElement('code');
      node.textContent = part.slice(1, -1);
    } else {
      // A link still streaming in shows as its label.
      node = document.createTextNode(
        part.replace(/\[([^\]]*)(\](\([^)]*)?)?$/, '$1').replace(/\*\*|`/g, ''),
      );
    }
    el.append(node);
  }
}

function hasQueued() {
  return [...state.pending.values()].some((p) => p.queued);
}

function addPending(clientId, text) {
  const el = messageEl('merchant');
  el.classList.add('pending');
  el.dataset.clientId = clientId;
  bodyOf(el).textContent = text;
  withScroll(() => els.transcript.append(el), true);
  state.pending.set(clientId, { text, el });
  savePending();
}

function resetTranscript() {
  els.transcript.replaceChildren();
  state.bySeq.clear();
  state.stream = null;
  state.lastSeq = 0;
}

// ---------------------------------------------------------------- Connect Shopify

// The same anchored rule as the server (hirecj_shopify::ShopDomain::parse):
// `name`, `name.myshopify.com` or the admin URL, lower-cased.
export function normalizeShop(raw) {
  const input = String(raw || '').trim();
  const lowered = input.toLowerCase();
  if (!lowered) return { error: 'Enter your store name, for example your-store or your-store.myshopify.com.' };
  const invalid = {
    error: `“${input.slice(0, 80)}” is not a Shopify store address. Use your-store, your-store.myshopify.com or your Shopify admin URL.`,
  };
  const rest = lowered.replace(/^https?:\/\//, '');
  const endOfHost = (s) => {
    const i = s.search(/[/?#]/);
    return i < 0 ? s.length : i;
  };
  let candidate;
  if (rest.startsWith(ADMIN_PREFIX)) {
    const after = rest.slice(ADMIN_PREFIX.length);
    const name = after.slice(0, endOfHost(after));
    if (!name) return invalid;
    candidate = name + SHOP_SUFFIX;
  } else {
    const host = rest.slice(0, endOfHost(rest));
    if (!host) return invalid;
    candidate = host.includes('.') ? host : host + SHOP_SUFFIX;
  }
  const m = /^([a-z0-9][a-z0-9-]*)\.myshopify\.com$/.exec(candidate);
  if (!m || m[1].length > 63) return invalid;
  return { shop: candidate };
}

function connectError(form, text) {
  const p = form.querySelector('.connect-error');
  const input = form.querySelector('.shop-input');
  p.textContent = text || '';
  p.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

function setConnectBusy(form, busy) {
  const button = form.querySelector('.connect-button');
  const input = form.querySelector('.shop-input');
  form.dataset.busy = busy ? '1' : '';
  form.classList.toggle('busy', busy);
  form.setAttribute('aria-busy', String(busy));
  button.disabled = busy;
  input.readOnly = busy;
  form.querySelector('.connect-label-text').textContent = busy ? 'Connecting…' : 'Connect Shopify';
}

async function submitConnect(form) {
  if (form.dataset.busy === '1') return; // no double submit
  const input = form.querySelector('.shop-input');
  const { shop, error } = normalizeShop(input.value);
  if (error) {
    connectError(form, error);
    input.focus();
    return;
  }
  connectError(form, '');
  setConnectBusy(form, true);
  const query = new URLSearchParams({ shop, mode: 'json' });
  if (state.conversationId) query.set('conversation_id', state.conversationId);
  try {
    const res = await fetch(`/api/v1/shopify/install?${query}`, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok || !data || typeof data.redirect_url !== 'string') {
      throw new Error(data?.error?.message
        ? `We could not connect that store: ${data.error.message}`
        : `We could not start the connection (HTTP ${res.status}). Please try again.`);
    }
    location.assign(data.redirect_url); // stays busy while the browser leaves
  } catch (err) {
    setConnectBusy(form, false);
    const offline = err instanceof TypeError;
    connectError(form, offline ? 'You seem to be offline. Check your connection and try again.' : err.message);
    input.focus();
  }
}

function connectForm() {
  const form = els.connectTemplate.content.firstElementChild.cloneNode(true);
  const input = form.querySelector('.shop-input');
  form.addEventListener('submit', (event) => {
    event.preventDefault(); // never a page reload (the original's bug 5.5.5)
    submitConnect(form);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    event.stopPropagation();
    event.preventDefault();
    if (event.isComposing || event.keyCode === 229) return;
    submitConnect(form);
  });
  input.addEventListener('input', () => connectError(form, ''));
  return form;
}

function mountUiElements(body, elements) {
  for (const slot of body.querySelectorAll('[data-ui-element]')) {
    const def = elements.find((e) => e && e.id === slot.dataset.uiElement);
    if (!def || def.type !== 'oauth_button') continue;
    if (state.storeConnected) {
      const done = document.createElement('p');
      done.className = 'connected-note muted';
      done.textContent = '✓ Your Shopify store is connected.';
      slot.replaceChildren(done);
    } else {
      slot.replaceChildren(connectForm());
    }
  }
}

if (els.oauthRetry) {
  els.oauthRetry.addEventListener('click', () => {
    // CJ's own Connect form, when the conversation shows one: back to it,
    // rather than a second form above it.
    const shown = [...els.transcript.querySelectorAll('.msg-cj .connect-form')].pop();
    if (shown) {
      els.oauthBanner?.remove();
      shown.scrollIntoView({ block: 'center' });
      shown.querySelector('.shop-input')?.focus();
      return;
    }
    const form = connectForm();
    els.oauthRetry.replaceWith(form);
    form.querySelector('.shop-input').focus();
  });
}

// ---------------------------------------------------------------- the socket

function sendFrame(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.sessionEnded) return;
  const url = new URL('/ws/chat', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (_) {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  state.open = false;
  ws.addEventListener('open', () => {
    const frame = { type: 'start_conversation', last_seq: state.lastSeq };
    if (state.conversationId) frame.conversation_id = state.conversationId;
    ws.send(JSON.stringify(frame));
  });
  ws.addEventListener('message', (event) => {
    if (state.ws !== ws) return;
    let frame;
    try { frame = JSON.parse(event.data); } catch (_) { return; }
    state.framesReceived += 1;
    handleFrame(frame);
  });
  ws.addEventListener('close', (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.open = false;
    if (state.sessionEnded) return; // the server said why already
    if (event.code === SESSION_ENDED_CLOSE) {
      sessionEnded();
      return;
    }
    setOffline(true);
    scheduleReconnect();
  });
}

/** The server closes a socket whose session ended with this code. */
const SESSION_ENDED_CLOSE = 4401;

/** Signed out (here or in another tab) or expired: say so, stop reconnecting. */
function sessionEnded(message) {
  state.sessionEnded = true;
  clearTimeout(state.reconnectTimer);
  setReplying(false);
  setOffline(false);
  showError(`${message || 'Your session has ended.'} Reload the page to continue.`, { sticky: true });
}

function scheduleReconnect() {
  clearTimeout(state.reconnectTimer);
  const base = Math.min(15000, 500 * 2 ** Math.min(state.attempts, 5));
  const delay = base / 2 + Math.random() * (base / 2);
  state.attempts += 1;
  // A refused upgrade may mean the session cookie is gone: /api/v1/me
  // issues a fresh (anonymous) one.
  if (state.attempts % 3 === 0) fetch('/api/v1/me', { credentials: 'same-origin' }).catch(() => {});
  state.reconnectTimer = setTimeout(connect, delay);
}

window.addEventListener('online', () => {
  if (!state.ws) {
    state.attempts = 0;
    connect();
  }
});

function setConversationUrl(id) {
  const url = new URL(location.href);
  url.searchParams.delete('oauth_error');
  if (id) url.searchParams.set('conversation_id', id);
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

function onStarted(f) {
  if (state.conversationId && f.conversation_id !== state.conversationId) resetTranscript();
  state.open = true;
  state.attempts = 0;
  setOffline(false);
  state.conversationId = f.conversation_id;
  setConversationUrl(f.conversation_id);
  state.workflow = f.workflow;
  state.storeConnected = Boolean(f.store_connected);
  renderSuggestions();
  state.debug = Boolean(f.debug);
  els.debugToggle.hidden = !state.debug;
  if (!state.debug) els.debugPanel.hidden = true;
  for (const m of f.messages || []) renderMessage(m);
  noteSeq(f.last_seq);
  if (!document.getElementById('reconnect-link')?.hidden) offerReconnect();
  // Anything sent that the server has not acknowledged goes again, same
  // client_id; a message queued behind a reply waits for its end.
  let resent = false;
  for (const [clientId, p] of state.pending) {
    if (p.queued) continue;
    sendFrame({ type: 'message', text: p.text, client_id: clientId });
    resent = true;
  }
  savePending();
  if (resent) {
    state.replying = true;
    syncButton();
  } else if (!state.stream) {
    setReplying(false);
  }
  if (!els.debugPanel.hidden) requestTraces();
}

// The newest message the server refused: it is taken back into the input.
function takeBackLatestPending(reason) {
  const last = [...state.pending].filter(([, p]) => !p.queued).pop();
  if (!last) return;
  const [clientId, p] = last;
  state.pending.delete(clientId);
  savePending();
  p.el.remove();
  if (!els.input.value) els.input.value = p.text;
  showError(reason);
}

function onError(f) {
  const message = f.message || 'Something went wrong.';
  switch (f.code) {
    case 'not_found':
    case 'forbidden':
      if (!state.open) { // the conversation in the URL is gone or not ours: start afresh
        state.conversationId = null;
        resetTranscript();
        setConversationUrl(null);
        const url = new URL(location.href);
        url.searchParams.delete('conversation_id');
        history.replaceState(history.state, '', url.pathname + url.search);
        sendFrame({ type: 'start_conversation', last_seq: 0 });
        return;
      }
      showError(message);
      return;
    case 'session_ended':
      sessionEnded(message);
      return;
    case 'rate_limited':
      takeBackLatestPending(f.retry_after
        ? `${message} (you can send again in ${f.retry_after} s)` : message);
      return;
    case 'turn_in_progress':
    case 'invalid_message':
      takeBackLatestPending(message);
      return;
    case 'unknown_workflow':
    case 'requirement_not_met':
      renderSuggestions();
      showError(message);
      return;
    case 'debug_disabled':
      state.debug = false;
      els.debugToggle.hidden = true;
      els.debugPanel.hidden = true;
      return;
    case 'store_unavailable':
      // CJ's storage is out for a moment. Messages not acknowledged stay
      // pending and go again (same client_id); a reply CJ has written is
      // kept by the server and arrives once it is saved.
      setStatus(message);
      if (state.pending.size) {
        clearTimeout(state.resendTimer);
        state.resendTimer = setTimeout(() => {
          if (!state.open) return;
          for (const [clientId, p] of state.pending) {
            sendFrame({ type: 'message', text: p.text, client_id: clientId });
          }
        }, STORE_RETRY_MS);
      }
      return;
    case 'turn_failed':
      setReplying(false);
      if (state.stream) {
        state.stream.el.classList.add('failed');
        state.stream = null;
      }
      showError(message);
      return;
    default:
      showError(message);
  }
}

function handleFrame(f) {
  switch (f.type) {
    case 'conversation_started':
      if (f.protocol !== PROTOCOL) console.warn('HireCJ: unexpected protocol version', f.protocol);
      onStarted(f);
      break;
    case 'message_ack': {
      const p = state.pending.get(f.client_id);
      if (p) {
        state.pending.delete(f.client_id);
        savePending();
        if (state.bySeq.has(f.seq)) {
          p.el.remove(); // already shown from the history
        } else {
          p.el.classList.remove('pending');
          p.el.dataset.seq = String(f.seq);
          state.bySeq.set(f.seq, p.el);
        }
      }
      noteSeq(f.seq);
      setReplying(true);
      if (!els.status.textContent) setStatus('CJ is thinking…');
      break;
    }
    case 'cj_thinking':
      // A status for a reply already shown is stale.
      if (Number.isInteger(f.turn) && f.turn <= state.lastSeq) break;
      setReplying(true);
      setStatus(f.status || 'CJ is thinking…');
      break;
    case 'cj_delta':
      setReplying(true);
      renderDelta(f.turn, String(f.text || ''), f.restart === true);
      if (state.dropOnDelta) {
        state.dropOnDelta = false;
        state.ws?.close(4000, 'test: drop mid-reply');
      }
      break;
    case 'merchant_message': // sent from another tab: CJ answers it next
      renderMessage(f);
      setReplying(true);
      if (!els.status.textContent) setStatus('CJ is thinking…');
      break;
    case 'cj_message':
      renderMessage(f);
      setReplying(false);
      if (!els.debugPanel.hidden) requestTraces();
      checkReconnect(f);
      break;
    case 'workflow_updated':
      // A switch the merchant asked for already says "CJ is on it"; a move
      // CJ's workflow makes on its own (after a welcome or a briefing)
      // needs no words.
      state.workflow = f.workflow;
      renderSuggestions();
      break;
    case 'conversation_ended':
      setReplying(false);
      setStatus('This conversation has ended. Send a message to pick it up again.');
      break;
    case 'error':
      onError(f);
      break;
    case 'debug_response':
      renderTraces(Array.isArray(f.traces) ? f.traces : []);
      break;
    case 'pong':
    default:
      break;
  }
}

// ---------------------------------------------------------------- composer

function sendFromInput() {
  const text = els.input.value.trim();
  if (!text) return;
  if (text.length > MAX_MESSAGE_CHARS) {
    showError(`That message is too long (${text.length} characters; the limit is ${MAX_MESSAGE_CHARS}).`);
    return;
  }
  const clientId = newClientId();
  addPending(clientId, text);
  els.input.value = '';
  renderSuggestions();
  if (state.replying || hasQueued()) {
    // CJ is answering: this one goes when the reply ends, in order.
    const p = state.pending.get(clientId);
    p.queued = true;
    p.el.classList.add('queued');
    setStatus('Your message goes as soon as CJ finishes this reply.');
  } else if (state.open) {
    sendFrame({ type: 'message', text, client_id: clientId });
    setReplying(true);
    setStatus('CJ is thinking…');
  } else {
    setStatus('Offline: your message will be sent when the connection is back.');
  }
  els.input.focus();
}

els.input.addEventListener('compositionstart', () => { state.composing = true; });
els.input.addEventListener('compositionend', () => {
  // Some browsers send the Enter that ends composition after this event.
  setTimeout(() => { state.composing = false; }, 0);
});
els.input.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter') return;
  if (event.isComposing || event.keyCode === 229 || state.composing) return; // IME: never send
  if (event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return; // a new line
  event.preventDefault();
  sendFromInput();
});
els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  // Typed text always goes (it waits for the reply); Stop only stops.
  if (state.replying && !els.input.value.trim()) {
    sendFrame({ type: 'stop' });
    setStatus('Stopping…');
    els.input.focus();
    return;
  }
  sendFromInput();
});
els.input.addEventListener('input', syncButton);

// ---------------------------------------------------------------- suggestions

// Chips after CJ's newest message, while CJ is idle: questions to start a
// conversation with, and the workflows CJ can run for a connected store,
// by their YAML titles ("Daily briefing", "Weekly review"). They scroll
// with the conversation and go when the merchant sends.
const QUESTIONS = ['What sells best?', 'How did last week go?', 'Show my recent orders'];

function chip(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'chip';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function renderSuggestions() {
  const box = els.suggestions;
  const started = els.transcript.querySelector('.msg-merchant');
  const chips = [];
  if (state.open && !state.replying && !hasQueued() && state.storeConnected) {
    if (!started) {
      for (const q of QUESTIONS) {
        chips.push(chip(q, () => {
          els.input.value = q;
          sendFromInput();
        }));
      }
    }
    for (const w of state.workflows) {
      const ours = w.initiator === 'cj' && w.requirements?.shopify === 'required';
      const allowed = w.requirements?.authentication !== 'required' || state.signedIn;
      if (!ours || !allowed || w.name === state.workflow) continue;
      const c = chip(humanize(w.name), () => switchWorkflow(w.name));
      c.dataset.workflow = w.name;
      if (w.description) c.title = w.description;
      chips.push(c);
    }
  }
  box.replaceChildren(...chips);
  box.hidden = !chips.length;
  if (chips.length && box !== els.transcript.lastElementChild) {
    withScroll(() => els.transcript.append(box));
  }
}

function switchWorkflow(workflow) {
  if (!workflow || workflow === state.workflow) return;
  if (!sendFrame({ type: 'switch_workflow', workflow })) {
    showError('Offline: try again when the connection is back.');
    return;
  }
  setReplying(true);
  setStatus(`${humanize(workflow)}: CJ is on it…`);
}

async function loadWorkflows() {
  try {
    const res = await fetch('/api/v1/workflows', { credentials: 'same-origin' });
    if (!res.ok) return;
    const data = await res.json();
    state.workflows = Array.isArray(data.workflows) ? data.workflows : [];
    renderSuggestions();
  } catch (_) { /* no chips */ }
}

// ---------------------------------------------------------------- debug panel

function requestTraces() {
  if (state.debug) sendFrame({ type: 'debug_request' });
}

function dl(pairs) {
  const list = document.createElement('dl');
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    list.append(dt, dd);
  }
  return list;
}

function pre(value) {
  const p = document.createElement('pre');
  let text = value;
  if (typeof value === 'string') {
    try { text = JSON.stringify(JSON.parse(value), null, 2); } catch (_) { text = value; } // truncated or plain text
  } else {
    text = JSON.stringify(value, null, 2);
  }
  p.textContent = text;
  return p;
}

const ms = (v) => (typeof v === 'number' ? `${v} ms` : undefined);

// Traces come from the model and tools: shown with textContent only.
function renderTraces(traces) {
  if (!traces.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No turns yet.';
    els.debugTraces.replaceChildren(p);
    return;
  }
  const items = traces.slice().reverse().map((entry) => {
    const t = entry.trace || entry;
    const box = document.createElement('details');
    box.className = 'trace';
    box.open = true;
    const summary = document.createElement('summary');
    summary.textContent = `Turn ${entry.turn ?? '?'} · ${t.workflow || ''} · ${ms(t.total_ms) || ''}`;
    box.append(summary);
    const usage = t.usage || {};
    box.append(dl([
      ['Workflow', t.workflow],
      ['Model', [t.provider, t.model].filter(Boolean).join(' / ')],
      ['Tokens in', usage.input_tokens],
      ['Tokens out', usage.output_tokens],
      ['Cache read', usage.cache_read_tokens],
      ['Cache write', usage.cache_write_tokens],
      ['Time to first token', ms(t.time_to_first_token_ms)],
      ['Model time', ms(t.model_ms)],
      ['Tool time', ms(t.tool_ms)],
      ['Total', ms(t.total_ms)],
      ['Stopped', t.stopped ? 'yes' : undefined],
      ['Error', t.error ? JSON.stringify(t.error) : undefined],
    ]));
    for (const call of Array.isArray(t.tool_calls) ? t.tool_calls : []) {
      const c = document.createElement('div');
      c.className = 'tool-call';
      const h = document.createElement('strong');
      h.textContent = `Tool ${call.name}${call.is_error ? ' (failed)' : ''} · ${ms(call.duration_ms) || ''}`;
      const label = (text) => {
        const p = document.createElement('p');
        p.className = 'trace-label';
        p.textContent = text;
        return p;
      };
      c.append(h, label('Arguments'), pre(call.arguments ?? {}), label('Result'), pre(call.result ?? ''));
      box.append(c);
    }
    return box;
  });
  els.debugTraces.replaceChildren(...items);
}

els.debugToggle.addEventListener('click', () => {
  const open = els.debugPanel.hidden;
  els.debugPanel.hidden = !open;
  els.debugToggle.setAttribute('aria-expanded', String(open));
  if (open) requestTraces();
});
els.debugRefresh.addEventListener('click', requestTraces);

// ---------------------------------------------------------------- test hooks

// Used by the browser tests; harmless for people (it only closes the socket,
// which the page then reopens as after any network drop).
window.__hirecjTest = {
  dropConnection() { state.ws?.close(4000, 'test: drop'); },
  dropOnNextDelta() { state.dropOnDelta = true; },
  get open() { return state.open; },
  get lastSeq() { return state.lastSeq; },
  get conversationId() { return state.conversationId; },
  get framesReceived() { return state.framesReceived; },
  normalizeShop,
  /** What a streaming bubble shows for `text`. */
  streaming(text) {
    const body = document.createElement('div');
    renderStreaming(body, text);
    return body.innerHTML;
  },
};

// ---------------------------------------------------------------- start

restorePending();
setStatus('Connecting to CJ…');
loadWorkflows();
connect();
// On a phone the keyboard would cover the conversation before it is read.
if (!window.matchMedia('(pointer: coarse)').matches) els.input.focus();
