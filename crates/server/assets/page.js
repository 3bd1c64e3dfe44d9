// Small behaviours shared by every page: sign out, and forgetting facts on
// "What CJ remembers". No build step; an ES module loaded by base.html.

async function signOut(button) {
  button.disabled = true;
  try {
    await fetch('/api/v1/auth/logout', { method: 'POST', credentials: 'same-origin' });
  } catch (_) {
    // Offline: the cookie stays until the next try; go home anyway.
  }
  location.assign('/');
}

async function forget(button) {
  const list = document.getElementById('fact-list');
  const status = document.getElementById('memory-status');
  const item = button.closest('[data-fact-id]');
  if (!list || !item) return;
  button.disabled = true;
  const url = `/api/v1/users/${encodeURIComponent(list.dataset.userId)}/facts/${encodeURIComponent(button.dataset.forget)}`;
  try {
    const res = await fetch(url, { method: 'DELETE', credentials: 'same-origin' });
    if (res.ok || res.status === 404) {
      const text = item.querySelector('.fact-text')?.textContent || 'that';
      const next = item.nextElementSibling;
      item.remove();
      if (status) offerUndo(status, list, item, next, text);
      return;
    }
    if (status) status.textContent = 'That fact could not be forgotten; please try again.';
  } catch (_) {
    if (status) status.textContent = 'You seem to be offline; please try again.';
  }
  button.disabled = false;
}

// "CJ forgot: …" with Undo, which has CJ remember it again, in its place.
function offerUndo(status, list, item, next, text) {
  status.textContent = `CJ forgot: ${text}. `;
  const undo = document.createElement('button');
  undo.type = 'button';
  undo.className = 'link-button';
  undo.textContent = 'Undo';
  undo.addEventListener('click', async () => {
    undo.disabled = true;
    try {
      const res = await fetch(`/api/v1/users/${encodeURIComponent(list.dataset.userId)}/facts`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text, source_conversation_id: item.dataset.source || undefined }),
      });
      if (!res.ok) throw new Error(String(res.status));
      const fact = await res.json();
      if (fact.id) {
        item.dataset.factId = fact.id;
        const forgetButton = item.querySelector('[data-forget]');
        forgetButton.dataset.forget = fact.id;
        forgetButton.disabled = false;
      }
      document.getElementById('no-facts')?.replaceWith(list);
      list.insertBefore(item, next && next.parentNode === list ? next : null);
      status.textContent = `CJ remembers again: ${text}`;
      item.querySelector('[data-forget]')?.focus();
    } catch (_) {
      status.textContent = `CJ could not remember “${text}” again; please try once more.`;
      status.append(undo);
      undo.disabled = false;
    }
  });
  status.append(undo);
  if (!list.querySelector('[data-fact-id]')) {
    const empty = document.createElement('p');
    empty.id = 'no-facts';
    empty.textContent = 'CJ does not remember anything about your business yet.';
    list.replaceWith(empty);
  }
  undo.focus();
}

// With scripts, a phone's header folds its links behind Menu (app.css).
document.documentElement.classList.add('js');

function toggleMenu(button) {
  const nav = document.getElementById('topnav');
  const open = !nav.classList.contains('open');
  nav.classList.toggle('open', open);
  button.setAttribute('aria-expanded', String(open));
}

document.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const menu = target?.closest('.menu-button');
  if (menu) {
    toggleMenu(menu);
    return;
  }
  const out = target?.closest('[data-sign-out]');
  if (out) {
    event.preventDefault();
    signOut(out);
    return;
  }
  const f = target?.closest('[data-forget]');
  if (f) {
    event.preventDefault();
    forget(f);
  }
});
