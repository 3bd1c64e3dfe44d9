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
      item.remove();
      if (status) status.textContent = `CJ forgot: ${text}`;
      if (!list.querySelector('[data-fact-id]')) {
        const empty = document.createElement('p');
        empty.id = 'no-facts';
        empty.textContent = 'CJ does not remember anything about your business yet.';
        list.replaceWith(empty);
      }
      return;
    }
    if (status) status.textContent = 'That fact could not be forgotten; please try again.';
  } catch (_) {
    if (status) status.textContent = 'You seem to be offline; please try again.';
  }
  button.disabled = false;
}

document.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target : null;
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
