// The Health page: one card per platform from GET {api}/health, with uPlot charts of the
// last hour. Refreshed every 15 seconds.
(function () {
  'use strict';

  const body = document.body;
  const api = body.dataset.api;
  const root = document.getElementById('platforms');
  const updated = document.getElementById('updated');
  const notice = document.getElementById('notice');
  const noticeText = document.getElementById('notice-text');
  const charts = [];
  const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone: 'UTC', timeZoneName: 'short' });
  const nf = new Intl.NumberFormat();

  const STATES = {
    operational: 'Operational',
    degraded: 'Degraded',
    throttled: 'Throttled',
    failing: 'Failing'
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const c of [].concat(children === undefined ? [] : children)) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function percent(x) {
    return x === null || x === undefined ? '—' : (Math.round(x * 1000) / 10) + '%';
  }

  function ms(x) {
    return x === null || x === undefined ? '—' : x >= 60000 ? '> 60 s' : x >= 1000 ? (x / 1000) + ' s' : x + ' ms';
  }

  function figure(list, label, value, attrs) {
    list.append(el('dt', {}, label), el('dd', attrs || {}, value));
  }

  function quotaText(q) {
    if (!q) return 'No quota signal';
    const used = q.used_percent === undefined || q.used_percent === null ? 'usage unknown' : Math.round(q.used_percent) + '% used';
    const left = q.remaining === undefined || q.remaining === null ? '' : ', ' + nf.format(q.remaining) + ' left';
    return used + left + ' (' + q.source + ')';
  }

  function chart(target, title, series, data) {
    const wrap = el('div', { class: 'chart' });
    target.append(el('p', { class: 'chart-title' }, title), wrap);
    if (typeof uPlot !== 'function') return;
    const width = Math.max(280, target.clientWidth || 380);
    const plot = new uPlot({
      width,
      height: 150,
      legend: { show: true },
      scales: { x: { time: true } },
      series: [{}].concat(series),
      axes: [{ stroke: '#4b5563' }, { stroke: '#4b5563' }]
    }, data, wrap);
    charts.push(plot);
  }

  function card(p) {
    const state = p.state;
    const c = el('article', { class: 'health-card', 'data-provider': p.provider, 'data-state': state, 'aria-labelledby': 'h-' + p.provider });
    c.append(el('header', {}, [
      el('h2', { id: 'h-' + p.provider }, p.name),
      el('span', { class: 'state state-' + state, 'data-testid': 'state' }, STATES[state] || state)
    ]));
    c.append(el('p', { class: 'reason' }, p.reason));

    const dl = el('dl', { class: 'figures' });
    const q = p.quota;
    figure(dl, 'Quota', quotaText(q), { class: 'quota' });
    figure(dl, 'Quota resets', q && q.reset_at ? time.format(new Date(q.reset_at)) : '—', { class: 'quota-reset', 'data-reset-at': q && q.reset_at ? q.reset_at : null });
    figure(dl, 'Success (1 h / 24 h)', percent(p.last1h.calls ? p.last1h.successRate : null) + ' / ' + percent(p.last24h.calls ? p.last24h.successRate : null));
    figure(dl, 'Calls (1 h / 24 h)', nf.format(p.last1h.calls) + ' / ' + nf.format(p.last24h.calls), { class: 'calls' });
    figure(dl, 'Latency p50 / p99 (1 h)', ms(p.last1h.p50Ms) + ' / ' + ms(p.last1h.p99Ms));
    figure(dl, 'Latency p50 / p99 (24 h)', ms(p.last24h.p50Ms) + ' / ' + ms(p.last24h.p99Ms));
    const accounts = Object.entries(p.accounts || {}).map(([s, n]) => nf.format(n) + ' ' + s.replace('_', ' ')).join(', ') || 'none';
    figure(dl, 'Accounts', accounts);
    figure(dl, 'Refresh backlog', nf.format(p.refreshBacklog), { class: 'backlog' });
    const errs = Object.entries(p.last1h.errors || {}).map(([k, n]) => k.replace('_', ' ') + ' ' + nf.format(n)).join(', ') || 'none';
    figure(dl, 'Errors (1 h)', errs, { class: 'error-classes' });
    c.append(dl);
    if (p.accountQuotas && p.accountQuotas.length) {
      c.append(el('h3', { class: 'chart-title' }, 'Quota per account (most used first)'));
      c.append(el('ul', { class: 'account-quotas' }, p.accountQuotas.map((a) =>
        el('li', { 'data-account': a.account }, [el('code', {}, a.account), ': ' + quotaText(a.quota) +
          (a.quota.reset_at ? ', regained ' + time.format(new Date(a.quota.reset_at)) : '')]))));
    }

    const xs = p.series.map((s) => Date.parse(s.minute) / 1000);
    chart(c, 'Calls and errors per minute (last hour)', [
      { label: 'Calls', stroke: '#4f46e5', width: 2, points: { show: true, size: 4 } },
      { label: 'Errors', stroke: '#dc2626', width: 2 },
      { label: 'Rate limited', stroke: '#ea580c', width: 2 }
    ], [xs, p.series.map((s) => s.calls), p.series.map((s) => s.errors), p.series.map((s) => s.rateLimited)]);
    chart(c, 'Quota used, % (last hour)', [
      { label: 'Quota %', stroke: '#0f766e', width: 2, spanGaps: true, points: { show: true, size: 6 } }
    ], [xs, p.series.map((s) => (s.quotaPercent === null || s.quotaPercent === undefined ? null : s.quotaPercent))]);

    c.append(el('h3', { class: 'chart-title' }, 'Most recent errors'));
    const list = el('ul', { class: 'errors' });
    if (!p.recentErrors.length) list.append(el('li', { class: 'none' }, 'None in the last 24 hours.'));
    for (const e of p.recentErrors) {
      list.append(el('li', { 'data-code': e.code }, [
        time.format(new Date(e.at)) + ' · ' + e.kind + ' · ',
        el('code', {}, e.code),
        ': ' + e.message
      ]));
    }
    c.append(list);
    return c;
  }

  function render(data) {
    while (charts.length) charts.pop().destroy();
    root.replaceChildren(...data.platforms.map(card));
    root.setAttribute('aria-busy', 'false');
    updated.textContent = 'Updated ' + time.format(new Date(data.generatedAt));
  }

  function signIn() {
    const signin = body.dataset.signin;
    const next = encodeURIComponent(location.pathname + location.search);
    if (signin) location.assign(signin + '?next=' + next);
  }

  async function load() {
    try {
      const r = await fetch(api + '/health', { credentials: 'same-origin', headers: { accept: 'application/json' } });
      if (r.status === 401) return signIn();
      if (!r.ok) throw new Error('HTTP ' + r.status);
      render(await r.json());
      notice.hidden = true;
    } catch (e) {
      noticeText.textContent = 'Could not load the health figures. ' + e.message;
      notice.hidden = false;
    }
  }

  load();
  setInterval(load, 15000);
})();
