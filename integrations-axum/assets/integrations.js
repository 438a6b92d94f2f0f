// The Integrations page: cards from GET /api/integrations/providers and /status; actions
// through the design's API. No build step, no framework.
(function () {
  'use strict';

  const MESSAGES = JSON.parse(document.getElementById('messages').textContent);
  // Where the API is mounted, where to sign in and who is signed in: set by the server.
  const API = document.body.dataset.api;
  const SIGNIN = document.body.dataset.signin;
  const WHOAMI = document.body.dataset.whoami;
  const PAGE = window.location.pathname;
  const GENERIC = MESSAGES.internal;

  const ICONS = {
    instagram: '<svg viewBox="0 0 48 48"><defs><linearGradient id="ig-grad" x1="0" y1="1" x2="1" y2="0"><stop offset="0" stop-color="#fdc468"/><stop offset=".35" stop-color="#f56040"/><stop offset=".65" stop-color="#c13584"/><stop offset="1" stop-color="#5851db"/></linearGradient></defs><rect width="48" height="48" rx="12" fill="url(#ig-grad)"/><rect x="12" y="12" width="24" height="24" rx="7.5" fill="none" stroke="#fff" stroke-width="3"/><circle cx="24" cy="24" r="5.6" fill="none" stroke="#fff" stroke-width="3"/><circle cx="31.2" cy="16.8" r="1.9" fill="#fff"/></svg>',
    tiktok: '<svg viewBox="0 0 48 48"><rect width="48" height="48" rx="12" fill="#121212"/><g fill="none" stroke-width="3.4" stroke-linecap="round" stroke-linejoin="round"><path d="M25.8 12.5v16.2a5.3 5.3 0 1 1-5.3-5.3M25.8 12.5c.7 3.7 3.2 6.1 7 6.4" stroke="#25f4ee" transform="translate(-1.3 -1.1)"/><path d="M25.8 12.5v16.2a5.3 5.3 0 1 1-5.3-5.3M25.8 12.5c.7 3.7 3.2 6.1 7 6.4" stroke="#fe2c55" transform="translate(1.3 1.1)"/><path d="M25.8 12.5v16.2a5.3 5.3 0 1 1-5.3-5.3M25.8 12.5c.7 3.7 3.2 6.1 7 6.4" stroke="#fff"/></g></svg>',
    reddit: '<svg viewBox="0 0 48 48"><circle cx="24" cy="24" r="24" fill="#ff4500"/><path d="M24.4 18.6l2.1-7.2 5.6 1.3" fill="none" stroke="#fff" stroke-width="1.9" stroke-linecap="round" stroke-linejoin="round"/><circle cx="33" cy="13.2" r="2.6" fill="#fff"/><circle cx="34.6" cy="22.4" r="3.2" fill="#fff"/><circle cx="13.4" cy="22.4" r="3.2" fill="#fff"/><ellipse cx="24" cy="28.4" rx="12.2" ry="8.6" fill="#fff"/><circle cx="19.4" cy="27.2" r="2.1" fill="#ff4500"/><circle cx="28.6" cy="27.2" r="2.1" fill="#ff4500"/><path d="M19.6 31.6c2.6 1.9 6.2 1.9 8.8 0" fill="none" stroke="#ff4500" stroke-width="1.7" stroke-linecap="round"/></svg>',
    onlyfans: '<svg viewBox="0 0 48 48"><rect width="48" height="48" rx="12" fill="#00aff0"/><circle cx="19.5" cy="25.5" r="8" fill="none" stroke="#fff" stroke-width="4.2"/><path d="M25.5 16.5h13c-1.4 5.2-5.4 8.4-11 8.6 1.2-3.1 1-6.3-2-8.6z" fill="#fff"/></svg>'
  };
  const DESCRIPTIONS = {
    instagram: 'Publish posts and reels, read comments and insights.',
    tiktok: 'Share videos and follow how they perform.',
    reddit: 'Post to communities and keep an eye on karma.',
    onlyfans: 'Sync subscribers and earnings through the connection gateway.'
  };
  const ACTION_LABELS = { connect: 'Connecting…', disconnect: 'Disconnecting…', refresh: 'Refreshing…' };
  // Answers that inform rather than report a failure: the connection is fine.
  const INFO_CODES = ['refresh_not_yet_allowed', 'unsupported'];
  // The most accounts one POST /bulk takes; a larger selection is sent in parts.
  const BULK_MAX = 50;
  // Where "Connect several…" keeps the platforms still to connect while the browser is
  // on their consent pages; a queue older than this is forgotten.
  const QUEUE_KEY = 'integrations.connectQueue';
  const QUEUE_MAX_AGE = 30 * 60 * 1000;

  const view = {
    providers: [],
    integrations: [],
    loaded: false,
    loadError: null,
    errors: {},      // provider id -> message shown on its card
    infos: {},       // provider id -> information shown on its card (not an error)
    busy: {},        // provider id -> { action, account }
    lastFocus: null, // the grid control that had focus last: { key, provider, row, action }
    selected: new Map(), // selKey(provider, account) -> { provider, providerAccountId }
    bulk: null,      // the bulk action in flight ('refresh' or 'disconnect')
    queue: null,     // "Connect several…" in progress, read back from sessionStorage
    filter: 'all',
    query: ''
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of [].concat(children || [])) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(message, code, status) { super(message); this.code = code; this.status = status; }
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_) {
      throw new ApiError(MESSAGES.network, 'network', 0);
    }
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (res.status === 401) {
      if (SIGNIN) window.location.assign(SIGNIN + '?next=' + encodeURIComponent(PAGE));
      throw new ApiError(data && data.message || GENERIC, 'unauthenticated', 401);
    }
    if (!res.ok) {
      throw new ApiError((data && data.message) || GENERIC, data && data.code, res.status);
    }
    return data;
  }

  // ---- data helpers ----------------------------------------------------------------

  const nf = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  const df = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
  const tf = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

  function accountsOf(provider) {
    return view.integrations.filter((i) => i.provider === provider);
  }

  function needsAttention(account) {
    return account.status === 'expired' || account.status === 'needs_reconnect';
  }

  function cardState(provider) {
    const accounts = accountsOf(provider);
    if (view.busy[provider]) return 'loading';
    if (view.errors[provider]) return 'error';
    if (accounts.some(needsAttention)) return 'expired';
    if (accounts.some((a) => a.lastError)) return 'error';
    return accounts.length ? 'connected' : 'disconnected';
  }

  const BADGES = {
    connected: ['Connected', 'badge-connected'],
    expired: ['Expired', 'badge-expired'],
    error: ['Error', 'badge-error'],
    disconnected: ['Not connected', 'badge-disconnected'],
    loading: ['Working…', 'badge-loading']
  };

  function avatarUrl(meta) {
    const url = meta.profile_picture_url || meta.avatar_url || meta.icon_img || meta.avatar;
    return typeof url === 'string' && /^https?:\/\//.test(url) ? url : null;
  }

  function figures(provider, meta) {
    const out = [];
    const num = (v) => (typeof v === 'number' && isFinite(v) ? nf.format(v) : null);
    if (num(meta.followers_count)) out.push(num(meta.followers_count) + ' followers');
    if (num(meta.follower_count)) out.push(num(meta.follower_count) + ' followers');
    if (num(meta.media_count)) out.push(num(meta.media_count) + ' posts');
    if (num(meta.karma)) out.push(num(meta.karma) + ' karma');
    if (num(meta.subscribers_count)) out.push(num(meta.subscribers_count) + ' subscribers');
    return out;
  }

  function expiryText(account) {
    if (account.status === 'needs_reconnect') return { text: 'Access revoked', warn: true };
    if (!account.expiresAt) return { text: 'No expiry', warn: false };
    const date = df.format(new Date(account.expiresAt));
    if (account.status === 'expired') return { text: 'Expired ' + date, warn: true };
    const soon = new Date(account.expiresAt).getTime() - Date.now() < 48 * 3600 * 1000;
    return { text: 'Token expires ' + (soon ? tf.format(new Date(account.expiresAt)) : date), warn: false };
  }

  // ---- rendering -------------------------------------------------------------------

  // A card's action button. `name` completes the visible label for assistive technology
  // ("Refresh" → "Refresh @demo on Instagram"). While the card is busy its buttons are
  // aria-disabled, not disabled, so the focused one keeps focus.
  function busyButton(provider, action, account, label, cls, name, onclick) {
    const b = view.busy[provider];
    const mine = b && b.action === action && (account === undefined || b.account === account);
    const text = mine ? ACTION_LABELS[action] : label;
    return el('button', {
      class: 'btn ' + cls,
      type: 'button',
      'data-action': action,
      'data-key': focusKey(provider, action, account),
      'aria-label': text + ' ' + name,
      'aria-busy': mine ? 'true' : null,
      'aria-disabled': b ? 'true' : null,
      onclick: () => { if (!view.busy[provider]) onclick(); }
    }, text);
  }

  function focusKey(provider, action, account) {
    return provider + ':' + action + ':' + (account || '');
  }

  function selKey(provider, account) {
    return provider + '\n' + account;
  }

  // "@demo on Instagram": an account as the page names it to the user.
  function accountLabel(provider, accountId) {
    const p = view.providers.find((x) => x.id === provider);
    const a = view.integrations.find((i) => i.provider === provider && i.providerAccountId === accountId);
    const handle = a && a.username ? '@' + a.username : accountId;
    return handle + ' on ' + (p ? p.name : provider);
  }

  function accountRow(p, account) {
    const meta = account.metadata || {};
    const name = meta.display_name || meta.name || null;
    const handle = account.username ? '@' + account.username : account.providerAccountId;
    const src = avatarUrl(meta);
    const initial = (account.username || p.name || '?').slice(0, 1).toUpperCase();
    const avatar = src
      ? el('img', { class: 'avatar', src, alt: '', width: 40, height: 40, loading: 'lazy', referrerpolicy: 'no-referrer' })
      : el('span', { class: 'avatar avatar-fallback', 'aria-hidden': 'true' }, initial);
    const exp = expiryText(account);
    const figs = figures(p.id, meta);
    const meta2 = [
      figs.length ? el('div', { class: 'account-meta' }, figs.map((f) => el('span', {}, f))) : null,
      el('div', { class: 'account-meta account-expiry' }, el('span', { class: exp.warn ? 'warn' : null }, exp.text))
    ];
    const actions = [];
    const id = account.providerAccountId;
    const selected = view.selected.has(selKey(p.id, id));
    const select = el('input', {
      type: 'checkbox',
      class: 'account-select',
      'data-action': 'select',
      'data-key': focusKey(p.id, 'select', id),
      'aria-label': 'Select ' + handle + ' on ' + p.name,
      checked: selected,
      onchange: (e) => setSelected(p.id, id, e.target.checked)
    });
    if (needsAttention(account)) {
      actions.push(busyButton(p.id, 'connect', id, 'Reconnect', 'btn-warn btn-small',
        handle + ' on ' + p.name, () => connect(p, id)));
    } else if (p.canRefresh) {
      actions.push(busyButton(p.id, 'refresh', id, 'Refresh', 'btn-ghost btn-small',
        handle + ' on ' + p.name, () => refresh(p, account)));
    }
    actions.push(busyButton(p.id, 'disconnect', id, 'Disconnect', 'btn-danger-ghost btn-small',
      handle + ' from ' + p.name, () => askDisconnect(p, account)));
    return el('li', {
      class: 'account' + (selected ? ' selected' : ''),
      'data-account': account.providerAccountId,
      'data-status': account.status
    }, [
      select,
      avatar,
      el('div', { class: 'account-main' }, [
        el('div', { class: 'account-name' }, name
          ? [name + ' ', el('span', { class: 'account-handle' }, handle)]
          : [el('span', { class: 'account-username' }, handle)]),
        ...meta2,
        // Why it failed; for a revoked connection, the reason the platform gave (the
        // user removed the app there, ...). An expired token needs no explanation.
        account.lastError && account.status !== 'expired'
          ? el('div', { class: 'account-error' }, account.lastError) : null
      ]),
      el('div', { class: 'account-actions' }, actions)
    ]);
  }

  function card(p) {
    const accounts = accountsOf(p.id);
    const state = cardState(p.id);
    const [badgeText, badgeClass] = BADGES[state];
    const icon = el('div', { class: 'app-icon', 'aria-hidden': 'true' });
    if (ICONS[p.id]) {
      icon.innerHTML = ICONS[p.id];
    } else {
      // A platform added by configuration: its initial.
      icon.classList.add('app-icon-fallback');
      icon.textContent = (p.name || p.id).slice(0, 1).toUpperCase();
    }
    const head = el('div', { class: 'card-head' }, [
      icon,
      el('div', { class: 'card-title' }, [
        el('h2', { id: 'title-' + p.id }, p.name),
        el('p', { class: 'card-desc' }, DESCRIPTIONS[p.id] || '')
      ]),
      el('span', { class: 'badge ' + badgeClass, 'data-role': 'status' }, badgeText)
    ]);
    const parts = [head];
    if (accounts.length) {
      parts.push(el('ul', { class: 'accounts', 'aria-label': p.name + ' accounts' },
        accounts.map((a) => accountRow(p, a))));
    }
    // No role=alert here: the card is rebuilt on every render, and the message was
    // announced once when it arrived (announce()).
    if (view.errors[p.id]) {
      parts.push(el('p', { class: 'card-error' }, view.errors[p.id]));
    } else if (view.infos[p.id]) {
      parts.push(el('p', { class: 'card-info' }, view.infos[p.id]));
    }
    const foot = accounts.length
      ? el('div', { class: 'card-foot' }, [
        el('span', { class: 'card-hint' }, accounts.length === 1 ? '1 account' : accounts.length + ' accounts'),
        busyButton(p.id, 'connect', '', 'Add account', 'btn-secondary btn-small', 'to ' + p.name, () => connect(p, ''))
      ])
      : el('div', { class: 'card-foot' }, [
        el('span', { class: 'card-hint' }, 'Not connected'),
        view.errors[p.id]
          ? busyButton(p.id, 'connect', '', 'Try again', 'btn-primary', 'to connect ' + p.name, () => connect(p, ''))
          : busyButton(p.id, 'connect', '', 'Add app', 'btn-primary', p.name, () => connect(p, ''))
      ]);
    parts.push(foot);
    return el('article', {
      class: 'card',
      'data-provider': p.id,
      'data-state': state,
      'aria-labelledby': 'title-' + p.id,
      'aria-busy': state === 'loading' ? 'true' : null
    }, parts);
  }

  function matches(p) {
    const q = view.query.trim().toLowerCase();
    const accounts = accountsOf(p.id);
    if (q) {
      const hay = [p.name, p.id].concat(accounts.map((a) => a.username || ''),
        accounts.map((a) => (a.metadata && (a.metadata.display_name || a.metadata.name)) || ''));
      if (!hay.some((s) => s.toLowerCase().includes(q))) return false;
    }
    switch (view.filter) {
      case 'connected': return accounts.length > 0;
      case 'attention': return accounts.some(needsAttention) || accounts.some((a) => a.lastError) || !!view.errors[p.id];
      case 'available': return accounts.length === 0;
      default: return true;
    }
  }

  // ---- focus -----------------------------------------------------------------------

  // Where a grid control is: enough to find it again, or its neighbour once it is gone.
  function describeFocus(node) {
    const key = node && node.dataset && node.dataset.key;
    const c = node && node.closest && node.closest('article.card');
    if (!key || !c) return null;
    const row = node.closest('li.account');
    return {
      key,
      provider: c.dataset.provider,
      action: node.dataset.action,
      row: row ? Array.prototype.indexOf.call(c.querySelectorAll('li.account'), row) : -1
    };
  }

  // Focuses the same control after the grid was rebuilt; after a removal, the control in
  // the row that took its place (or the one above), else the card's own button, else the
  // first control of the grid or of the empty state.
  function restoreFocus(want) {
    const grid = $('grid');
    const same = grid.querySelector('[data-key="' + CSS.escape(want.key) + '"]');
    let target = same;
    if (!target) {
      const c = grid.querySelector('article.card[data-provider="' + CSS.escape(want.provider) + '"]');
      if (c) {
        const rows = c.querySelectorAll('li.account');
        const row = want.row >= 0 ? (rows[want.row] || rows[rows.length - 1]) : null;
        target = (row && (row.querySelector('[data-action="' + want.action + '"]') || row.querySelector('[data-key]'))) ||
          c.querySelector('.card-foot [data-key]');
      }
    }
    if (!target) target = grid.querySelector('[data-key]');
    if (!target && !$('empty-action').hidden) target = $('empty-action');
    if (!target) target = $('search');
    target.focus();
  }

  function render() {
    const grid = $('grid');
    const empty = $('empty');
    grid.setAttribute('aria-busy', view.loaded ? 'false' : 'true');
    if (!view.loaded) return;

    const connectedApps = view.providers.filter((p) => accountsOf(p.id).length).length;
    const accountsCount = view.integrations.filter((i) => view.providers.some((p) => p.id === i.provider)).length;
    const summary = $('summary');
    const summaryText = view.providers.length
      ? connectedApps + ' of ' + view.providers.length + ' apps connected · ' + accountsCount +
        (accountsCount === 1 ? ' account' : ' accounts')
      : '';
    if (summary.dataset.text !== summaryText) {
      summary.dataset.text = summaryText;
      summary.textContent = '';
      if (summaryText) {
        summary.append(el('strong', {}, String(connectedApps)), ' of ' + view.providers.length + ' apps connected · ',
          el('strong', {}, String(accountsCount)), accountsCount === 1 ? ' account' : ' accounts');
      }
    }

    // Rebuilding the grid removes the focused button: put focus back where it was, unless
    // it is elsewhere on the page (the search box, a filter, the dialog).
    const active = document.activeElement;
    const want = grid.contains(active)
      ? describeFocus(active)
      : (!active || active === document.body ? view.lastFocus : null);
    const fromEmpty = active === $('empty-action');
    const shown = view.providers.filter(matches);
    grid.replaceChildren(...shown.map(card));

    const action = $('empty-action');
    if (view.loadError) {
      empty.hidden = false;
      $('empty-title').textContent = 'Could not load your integrations';
      $('empty-text').textContent = view.loadError;
      action.hidden = false;
      action.textContent = 'Try again';
      action.onclick = () => load();
    } else if (!view.providers.length) {
      empty.hidden = false;
      $('empty-title').textContent = 'No integrations available';
      $('empty-text').textContent = 'No platform is enabled on this server. Ask an administrator to turn one on.';
      action.hidden = true;
    } else if (!shown.length) {
      empty.hidden = false;
      $('empty-title').textContent = view.query.trim() ? 'No apps match “' + view.query.trim() + '”' : 'Nothing to show here';
      $('empty-text').textContent = view.filter === 'attention'
        ? 'All your connections are healthy.'
        : 'Try another search or filter.';
      action.hidden = false;
      action.textContent = 'Show all apps';
      action.onclick = () => { view.query = ''; $('search').value = ''; setFilter('all'); };
    } else {
      empty.hidden = true;
    }
    updateBulkBar();
    $('connect-many').hidden = !view.providers.some((p) => !accountsOf(p.id).length);
    if (want) {
      restoreFocus(want);
    } else if (fromEmpty && empty.hidden) {
      // "Show all apps" or "Try again" worked and is gone: on to the first card.
      ($('grid').querySelector('[data-key]') || $('search')).focus();
    }
  }

  // ---- announcements ---------------------------------------------------------------

  let announceTimer = null;

  // Says `text` once through the page's one live region. Emptied first, so the same
  // words said twice are heard twice.
  function announce(text, delay) {
    clearTimeout(announceTimer);
    announceTimer = setTimeout(() => {
      const region = $('announce');
      region.textContent = '';
      announceTimer = setTimeout(() => { region.textContent = text; }, 50);
    }, delay || 0);
  }

  // The result of a search or filter, said once the typing pauses.
  function announceResults(delay) {
    const shown = view.providers.filter(matches).length;
    const total = view.providers.length;
    announce(shown === 0 ? 'No apps shown.' : shown === total
      ? 'All ' + total + ' apps shown.'
      : shown + ' of ' + total + (total === 1 ? ' app shown.' : ' apps shown.'), delay);
  }

  function notify(text, isError) {
    const n = $('notice');
    $('notice-text').textContent = text;
    n.classList.toggle('error', !!isError);
    n.hidden = false;
    announce(text);
  }

  // A failed action's answer: information (the card stays as it is) or an error.
  function setOutcome(p, e) {
    if (INFO_CODES.includes(e.code)) {
      view.infos[p.id] = e.message;
    } else {
      view.errors[p.id] = e.message;
    }
    announce(p.name + ': ' + e.message);
  }

  // ---- actions ---------------------------------------------------------------------

  async function load() {
    try {
      const [p, s] = await Promise.all([
        api('GET', API + '/providers'),
        api('GET', API + '/status')
      ]);
      view.providers = p.providers;
      view.integrations = s.integrations;
      view.loadError = null;
      // What is gone (disconnected here or elsewhere) is no longer selected.
      for (const [key, a] of view.selected) {
        if (!view.integrations.some((i) => i.provider === a.provider && i.providerAccountId === a.providerAccountId)) {
          view.selected.delete(key);
        }
      }
    } catch (e) {
      view.loadError = e.message;
      announce('Could not load your integrations. ' + e.message);
    }
    view.loaded = true;
    render();
  }

  function start(p, action, account) {
    view.busy[p.id] = { action, account };
    delete view.errors[p.id];
    delete view.infos[p.id];
    render();
  }

  async function connect(p, account) {
    start(p, 'connect', account);
    try {
      const answer = await api('POST', API + '/connect/' + encodeURIComponent(p.id),
        { redirectUrl: PAGE });
      window.location.assign(answer.authUrl);
    } catch (e) {
      delete view.busy[p.id];
      setOutcome(p, e);
      render();
    }
  }

  async function refresh(p, account) {
    start(p, 'refresh', account.providerAccountId);
    try {
      await api('POST', API + '/refresh/' + encodeURIComponent(p.id) + '/' +
        encodeURIComponent(account.providerAccountId), {});
      notify(p.name + ' connection refreshed.');
    } catch (e) {
      setOutcome(p, e);
    }
    delete view.busy[p.id];
    await load();
  }

  function askDisconnect(p, account) {
    const dialog = $('confirm');
    const who = account.username ? '@' + account.username : account.providerAccountId;
    $('confirm-title').textContent = 'Disconnect ' + p.name + '?';
    $('confirm-text').textContent = who + ' will be disconnected and its stored tokens deleted. You can connect it again at any time.';
    dialog.returnValue = '';
    // The dialog gives focus back to its button; if the grid was rebuilt meanwhile, that
    // button is gone and focus goes to the same control in the new grid.
    const origin = describeFocus(document.activeElement) || {
      key: focusKey(p.id, 'disconnect', account.providerAccountId),
      provider: p.id,
      action: 'disconnect',
      row: -1
    };
    dialog.onclose = () => {
      const at = document.activeElement;
      if (!at || at === document.body || dialog.contains(at)) restoreFocus(origin);
      if (dialog.returnValue === 'confirm') disconnect(p, account);
    };
    dialog.showModal();
  }

  async function disconnect(p, account) {
    start(p, 'disconnect', account.providerAccountId);
    try {
      const r = await api('DELETE', API + '/disconnect/' + encodeURIComponent(p.id) + '/' +
        encodeURIComponent(account.providerAccountId));
      notify(r.message || p.name + ' disconnected.');
    } catch (e) {
      setOutcome(p, e);
    }
    delete view.busy[p.id];
    await load();
  }

  // ---- selection and bulk actions -----------------------------------------------

  function setSelected(provider, account, on) {
    const key = selKey(provider, account);
    if (on) view.selected.set(key, { provider, providerAccountId: account });
    else view.selected.delete(key);
    const row = $('grid').querySelector('article.card[data-provider="' + CSS.escape(provider) +
      '"] li.account[data-account="' + CSS.escape(account) + '"]');
    if (row) row.classList.toggle('selected', on);
    updateBulkBar();
  }

  function clearSelection() {
    view.selected.clear();
    for (const box of $('grid').querySelectorAll('input.account-select')) {
      box.checked = false;
      box.closest('li.account').classList.remove('selected');
    }
    updateBulkBar();
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  // The bar: shown while something is selected; its buttons say how many they act on.
  function updateBulkBar() {
    const n = view.selected.size;
    const bar = $('bulkbar');
    bar.hidden = n === 0;
    $('bulk-count').textContent = n + ' selected';
    const what = plural(n, 'selected account', 'selected accounts');
    const busy = view.bulk;
    const refresh = $('bulk-refresh');
    const disconnect = $('bulk-disconnect');
    refresh.textContent = busy === 'refresh' ? ACTION_LABELS.refresh : 'Refresh';
    disconnect.textContent = busy === 'disconnect' ? ACTION_LABELS.disconnect : 'Disconnect';
    refresh.setAttribute('aria-label', refresh.textContent + ' ' + what);
    disconnect.setAttribute('aria-label', disconnect.textContent + ' ' + what);
    for (const b of bar.querySelectorAll('button')) {
      if (busy) b.setAttribute('aria-disabled', 'true');
      else b.removeAttribute('aria-disabled');
    }
    for (const [button, action] of [[refresh, 'refresh'], [disconnect, 'disconnect']]) {
      if (busy === action) button.setAttribute('aria-busy', 'true');
      else button.removeAttribute('aria-busy');
    }
  }

  // "@a on Instagram, @b on TikTok and @c on Reddit" (the first ten, then how many more).
  function listText(labels) {
    const shown = labels.slice(0, 10);
    const more = labels.length - shown.length;
    if (more > 0) return shown.join(', ') + ' and ' + plural(more, 'other account', 'other accounts');
    if (shown.length === 1) return shown[0];
    return shown.slice(0, -1).join(', ') + ' and ' + shown[shown.length - 1];
  }

  function askBulkDisconnect() {
    if (view.bulk || !view.selected.size) return;
    const accounts = [...view.selected.values()];
    const n = accounts.length;
    const dialog = $('confirm');
    $('confirm-title').textContent = 'Disconnect ' + plural(n, 'account', 'accounts') + '?';
    $('confirm-text').textContent = listText(accounts.map((a) => accountLabel(a.provider, a.providerAccountId))) +
      (n === 1
        ? ' will be disconnected and its stored tokens deleted. You can connect it again at any time.'
        : ' will be disconnected and their stored tokens deleted. You can connect them again at any time.');
    dialog.returnValue = '';
    dialog.onclose = () => {
      const at = document.activeElement;
      if (!at || at === document.body || dialog.contains(at)) $('bulk-disconnect').focus();
      if (dialog.returnValue === 'confirm') runBulk('disconnect');
    };
    dialog.showModal();
  }

  // One action on every selected account through POST /bulk (in parts of BULK_MAX), then
  // a summary: what was done, and each account that was not, with the reason. What was
  // done leaves the selection; what failed stays selected.
  async function runBulk(action) {
    if (view.bulk || !view.selected.size) return;
    const accounts = [...view.selected.values()];
    const labels = new Map(accounts.map((a) => [selKey(a.provider, a.providerAccountId),
      accountLabel(a.provider, a.providerAccountId)]));
    view.bulk = action;
    for (const a of accounts) {
      view.busy[a.provider] = { action, account: null };
      delete view.errors[a.provider];
      delete view.infos[a.provider];
    }
    render();
    const results = [];
    let failure = null;
    for (let i = 0; i < accounts.length && !failure; i += BULK_MAX) {
      const part = accounts.slice(i, i + BULK_MAX);
      try {
        const answer = await api('POST', API + '/bulk', {
          action,
          accounts: part.map((a) => ({ provider: a.provider, accountId: a.providerAccountId }))
        });
        results.push(...answer.results);
      } catch (e) {
        failure = e;
      }
    }
    for (const a of accounts) delete view.busy[a.provider];
    view.bulk = null;

    const verb = action === 'refresh' ? 'refreshed' : 'disconnected';
    const ok = results.filter((r) => r.result === 'ok');
    const failed = results.filter((r) => r.result !== 'ok');
    for (const r of ok) view.selected.delete(selKey(r.provider, r.accountId));
    const parts = [];
    if (ok.length) parts.push(plural(ok.length, 'account', 'accounts') + ' ' + verb + '.');
    else if (!failure) parts.push('No account ' + verb + '.');
    for (const r of failed) {
      const label = labels.get(selKey(r.provider, r.accountId)) || r.accountId;
      parts.push('Could not ' + action + ' ' + label + ': ' + r.message);
    }
    if (failure) parts.push(failure.message);
    const isError = !!failure || failed.some((r) => !INFO_CODES.includes(r.code));

    await load();
    // The bar is gone when nothing is left selected: focus goes on to the grid.
    const at = document.activeElement;
    if (!at || at === document.body || at.closest('[hidden]')) {
      ($('grid').querySelector('[data-key]') || $('search')).focus();
    }
    notify(parts.join(' '), isError);
  }

  // ---- connect several ------------------------------------------------------------

  function readQueue() {
    try {
      const q = JSON.parse(window.sessionStorage.getItem(QUEUE_KEY));
      if (q && Array.isArray(q.steps) && typeof q.at === 'number' &&
          Date.now() - q.started < QUEUE_MAX_AGE) return q;
    } catch (_) { /* no storage, or not ours */ }
    clearQueue();
    return null;
  }

  function saveQueue(q) {
    try { window.sessionStorage.setItem(QUEUE_KEY, JSON.stringify(q)); } catch (_) { /* private mode */ }
  }

  function clearQueue() {
    try { window.sessionStorage.removeItem(QUEUE_KEY); } catch (_) { /* private mode */ }
  }

  function openConnectMany() {
    const list = $('connect-many-choices');
    const available = view.providers.filter((p) => !accountsOf(p.id).length);
    list.replaceChildren(...available.map((p) => el('label', { class: 'choice' }, [
      el('input', { type: 'checkbox', name: 'provider', value: p.id }),
      el('span', {}, p.name)
    ])));
    $('connect-many-error').hidden = true;
    const dialog = $('connect-many-dialog');
    dialog.returnValue = '';
    dialog.showModal();
  }

  function chosenPlatforms() {
    return [...$('connect-many-choices').querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value);
  }

  function startQueue(ids) {
    const steps = ids.map((id) => {
      const p = view.providers.find((x) => x.id === id);
      return { id, name: p ? p.name : id, outcome: null, message: null };
    });
    if (!steps.length) return;
    runQueue({ steps, at: 0, started: Date.now() });
  }

  // Starts the next platform's connection (the browser leaves for its consent page and
  // the callback brings it back here), or, when none is left, shows the summary. A step
  // that cannot start is reported and the queue goes on.
  async function runQueue(q) {
    view.queue = q;
    while (q.at < q.steps.length) {
      const step = q.steps[q.at];
      saveQueue(q);
      notify('Connecting ' + step.name + ' (' + (q.at + 1) + ' of ' + q.steps.length + ')…');
      try {
        const answer = await api('POST', API + '/connect/' + encodeURIComponent(step.id),
          { redirectUrl: PAGE });
        window.location.assign(answer.authUrl);
        return;
      } catch (e) {
        step.outcome = 'failed';
        step.message = e.message;
        q.at += 1;
      }
    }
    clearQueue();
    view.queue = null;
    const connected = q.steps.filter((s) => s.outcome === 'connected').map((s) => s.name);
    const missed = q.steps.filter((s) => s.outcome !== 'connected')
      .map((s) => s.name + ' (' + (s.outcome === 'cancelled' ? 'cancelled' : s.message || GENERIC) + ')');
    const parts = [];
    if (connected.length) parts.push('Connected: ' + connected.join(', ') + '.');
    if (missed.length) parts.push('Not connected: ' + missed.join(', ') + '.');
    notify(parts.join(' '), missed.length > 0);
  }

  // Back from a step's consent page: its outcome is in the redirect's query (no outcome
  // at all, say after the browser's Back button, counts as cancelled).
  function readQueueStep(q, query) {
    const step = q.steps[q.at];
    if (!step || step.outcome) return;
    const error = query.get('error');
    if (query.get('connected') === step.id) {
      step.outcome = 'connected';
    } else if (query.get('provider') === step.id && error && error !== 'cancelled') {
      step.outcome = 'failed';
      step.message = MESSAGES[error] || GENERIC;
    } else {
      step.outcome = 'cancelled';
    }
    q.at += 1;
  }

  function setFilter(f) {
    view.filter = f;
    for (const chip of document.querySelectorAll('.chip')) {
      chip.setAttribute('aria-pressed', chip.dataset.filter === f ? 'true' : 'false');
    }
    render();
    announceResults();
  }

  // ---- start -----------------------------------------------------------------------

  function readRedirect() {
    const q = new URLSearchParams(window.location.search);
    const provider = q.get('provider');
    const error = q.get('error');
    const connected = q.get('connected');
    if (error) {
      const message = MESSAGES[error] || GENERIC;
      if (provider) {
        view.errors[provider] = message;
        announce(message);
      } else {
        notify(message, true);
      }
    } else if (connected) {
      view.justConnected = connected;
      view.justAccount = q.get('account');
    }
    // Coming back from a step of "Connect several…": the summary says how it went.
    const queue = readQueue();
    if (queue) {
      readQueueStep(queue, q);
      view.queue = queue;
      view.justConnected = null;
    }
    if (q.toString()) window.history.replaceState(null, '', PAGE);
  }

  async function whoami() {
    if (!WHOAMI || !$('who')) return;
    try {
      const s = await api('GET', WHOAMI);
      $('who').textContent = 'User ' + s.userId;
    } catch (_) { /* the page redirects on 401 */ }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('search').addEventListener('input', (e) => {
      view.query = e.target.value;
      render();
      announceResults(700);
    });
    // The grid control focused last, to find again after a rebuild took focus away.
    document.addEventListener('focusin', (e) => {
      const grid = $('grid');
      if (grid.contains(e.target)) view.lastFocus = describeFocus(e.target);
      else if (e.target !== document.body) view.lastFocus = null;
    });
    for (const chip of document.querySelectorAll('.chip')) {
      chip.addEventListener('click', () => setFilter(chip.dataset.filter));
    }
    $('bulk-refresh').addEventListener('click', () => runBulk('refresh'));
    $('bulk-disconnect').addEventListener('click', askBulkDisconnect);
    $('bulk-clear').addEventListener('click', () => {
      if (view.bulk) return;
      clearSelection();
      ($('grid').querySelector('input.account-select') || $('search')).focus();
      announce('Selection cleared.');
    });
    $('connect-many').addEventListener('click', openConnectMany);
    $('connect-many-form').addEventListener('submit', (e) => {
      if (e.submitter && e.submitter.value === 'start' && !chosenPlatforms().length) {
        e.preventDefault();
        $('connect-many-error').hidden = false;
        announce($('connect-many-error').textContent);
        const first = $('connect-many-choices').querySelector('input');
        if (first) first.focus();
      }
    });
    $('connect-many-dialog').addEventListener('close', () => {
      if ($('connect-many-dialog').returnValue === 'start') startQueue(chosenPlatforms());
    });
    document.querySelector('.notice-close').addEventListener('click', () => {
      $('notice').hidden = true;
      $('search').focus(); // the next control after the message
    });
    readRedirect();
    whoami();
    if (view.queue && view.queue.at < view.queue.steps.length) {
      // On to the next consent page; the page behind it loads meanwhile.
      runQueue(view.queue);
      await load();
      return;
    }
    await load();
    if (view.queue) {
      runQueue(view.queue);
    } else if (view.justConnected) {
      const p = view.providers.find((x) => x.id === view.justConnected);
      const a = accountsOf(view.justConnected).find((x) => x.providerAccountId === view.justAccount);
      if (p) notify(p.name + ' connected' + (a && a.username ? ' as @' + a.username : '') + '.');
    }
  });
})();
