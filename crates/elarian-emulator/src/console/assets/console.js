// The console's script: fills the server-rendered pages from the JSON API and keeps them
// current from the event stream (/api/events). No build step, no dependencies.
(() => {
  'use strict';
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const page = document.body.dataset.page;
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const time = (ms) => (ms ? new Date(ms).toLocaleString() : '');
  const short = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '');
  const money = (v) => (v == null ? '' : Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  let org = localStorage.getItem('elarian-console-org') || '';
  let overview = null;

  async function api(path, body) {
    const init = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
    const res = await fetch(path, init);
    const json = await res.json().catch(() => ({ error: res.statusText }));
    if (!res.ok) throw new Error(json.error || res.statusText);
    return json;
  }
  const withOrg = (path) => (org ? path + (path.includes('?') ? '&' : '?') + 'org=' + encodeURIComponent(org) : path);
  const currentOrg = () => (overview ? overview.orgs.find((o) => o.id === org) || overview.orgs[0] : null);

  // Coalesces refreshes: many events in a burst cause one snapshot read.
  function debounce(fn, ms = 120) {
    let timer = null, running = false, again = false;
    const run = async () => {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      try { await fn(); } catch (e) { console.warn(e); }
      running = false;
      if (again) { again = false; timer = setTimeout(run, ms); }
    };
    return () => { if (!timer) timer = setTimeout(run, ms); };
  }

  const chip = (text, kind = '') => `<span class="chip ${kind}">${esc(text)}</span>`;
  const statusKind = (s) => (/fail|reject|error|expired|invalid|blocked|not_/.test(s) ? 'bad' : /pending|queued|sent|in_session|validated/.test(s) ? 'warn' : /success|delivered|read|active|completed/.test(s) ? 'ok' : 'grey');
  const indexText = (i) => (i.value ? `${i.key}=${i.value}` : i.key);
  const options = (sel, values, keep) => {
    if (!sel) return;
    const old = keep ? sel.value : '';
    sel.innerHTML = values.map((v) => (Array.isArray(v) ? `<option value="${esc(v[0])}">${esc(v[1])}</option>` : `<option>${esc(v)}</option>`)).join('');
    if (old && values.some((v) => (Array.isArray(v) ? v[0] : v) === old)) sel.value = old;
  };

  // ---- live feed ----
  const listeners = [];
  const onEvent = (fn) => listeners.push(fn);
  function connect() {
    const es = new EventSource('/api/events');
    const live = $('#live');
    es.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
    es.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
    es.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      if (ev.type === 'rate') $('#rate').textContent = `${ev.commands_per_sec} cmd/s`;
      if (ev.org && org && ev.org !== org) return;
      listeners.forEach((fn) => fn(ev));
    };
  }

  // ---- customers ----
  function customersPage() {
    const search = $('#search');
    search.value = new URLSearchParams(location.search).get('q') || '';
    const load = async () => {
      const q = search.value.trim();
      const data = await api(withOrg('/api/customers?limit=200&q=' + encodeURIComponent(q)));
      $('#count').textContent = q ? `${data.customers.length}${data.complete ? '' : '+'} of ${data.total}` : `${data.total}`;
      $('#customers').innerHTML = data.customers.length ? data.customers.map((c) => `<tr data-id="${esc(c.id)}">
        <td><a href="/customers/${encodeURIComponent(c.id)}" class="mono">${esc(c.id)}</a></td>
        <td>${c.numbers.map((n) => chip(n.number, 'grey')).join('')}</td>
        <td>${c.secondary_ids.map((i) => chip(indexText(i))).join('')}</td>
        <td>${c.tags.map((i) => chip(indexText(i))).join('')}</td>
        <td>${c.messages}</td><td class="muted">${time(c.created_at)}</td></tr>`).join('')
        : `<tr><td colspan="6" class="empty">${q ? 'No customer matches.' : 'No customers yet: they appear when an app creates one or a customer writes in.'}</td></tr>`;
    };
    const refresh = debounce(load, 250);
    search.addEventListener('input', () => {
      const u = new URL(location.href);
      if (search.value) u.searchParams.set('q', search.value); else u.searchParams.delete('q');
      history.replaceState(null, '', u);
      refresh();
    });
    onEvent((ev) => { if (ev.type === 'changed' || ev.type === 'resync') refresh(); });
    const o = currentOrg();
    const form = $('#new-customer');
    const chans = messageChannels(o);
    options(form.channel, chans.map((c) => [c.channel + '|' + c.number, `${c.label} ${c.number}`]));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const [channel, number] = form.channel.value.split('|');
      try {
        const r = await api('/api/simulate/message', { org: o.id, customer_number: form.customer_number.value.trim(), channel, channel_number: number, text: form.text.value });
        $('#new-result').textContent = r.status ? `Sent. ${r.reply ? 'App replied: ' + r.reply : r.description}` : `Not accepted: ${r.description}`;
        form.text.value = '';
        refresh();
      } catch (err) { $('#new-result').textContent = err.message; }
    });
    load();
  }

  const CHANNELS = [['sms', 'SMS'], ['whatsapp', 'WhatsApp'], ['telegram', 'Telegram'], ['messenger', 'Messenger'], ['email', 'Email']];
  function messageChannels(o) {
    const out = [];
    if (!o) return out;
    for (const [channel, label] of CHANNELS) for (const number of o.channels[channel] || []) out.push({ channel, label, number });
    return out;
  }

  // ---- one customer ----
  function customerPage() {
    const id = document.body.dataset.customer;
    const o = currentOrg();
    let customer = null;
    let ussd = null; // { session_id }
    let call = null; // { session_id, number }
    const result = (text, err) => { const p = $('#phone-result'); p.textContent = text; p.className = 'result ' + (err ? 'err' : 'muted'); };

    const load = async () => {
      try { customer = await api(withOrg('/api/customers/' + encodeURIComponent(id))); } catch (e) {
        $('#title').textContent = 'Customer'; $('#identity').innerHTML = `<p class="empty">${esc(e.message)}</p>`; return;
      }
      render();
    };
    const refresh = debounce(load);
    onEvent((ev) => {
      if (ev.type === 'resync' || (ev.type === 'changed' && (ev.many || ev.customers.includes(id))) || (ev.type === 'notification' && ev.customer === id)) refresh();
    });

    function render() {
      const c = customer;
      $('#title').innerHTML = `Customer <span class="mono">${esc(c.id)}</span>`;
      $('#identity').innerHTML = `<dl>
        <dt>Numbers</dt><dd>${c.numbers.map((n) => chip(`${n.number} · ${n.provider}`, 'grey')).join('') || '<span class="empty">none</span>'}</dd>
        <dt>Secondary ids</dt><dd>${c.secondary_ids.map((i) => chip(indexText(i))).join('') || '<span class="empty">none</span>'}</dd>
        <dt>Tags</dt><dd>${c.tags.map((i) => chip(indexText(i) + (i.expires_at ? ' · until ' + time(i.expires_at) : ''))).join('') || '<span class="empty">none</span>'}</dd>
        <dt>Created</dt><dd>${time(c.created_at)}</dd></dl>`;
      renderThreads(c);
      $('#sessions').innerHTML = c.sessions.length ? `<table><thead><tr><th>Channel</th><th>Session</th><th>Started</th><th>Duration</th><th>Ended by</th></tr></thead><tbody>${c.sessions.slice().reverse().map((s) => `<tr><td>${esc(s.channel?.channel)} ${esc(s.channel?.number)}</td><td class="mono">${esc(s.session_id)}</td><td>${time(s.started_at)}</td><td>${s.duration_secs == null ? '' : s.duration_secs.toFixed(1) + ' s'}</td><td>${chip(s.end_reason, 'grey')}</td></tr>`).join('')}</tbody></table>` : '<p class="empty">No completed sessions.</p>';
      $('#wallets').innerHTML = c.wallets.length ? `<div class="tiles">${c.wallets.map((w) => `<div class="tile" data-wallet="${esc(w.id)}"><div class="muted">${esc(w.id)}</div><div class="big balance">${esc(w.currency)} ${money(w.available)}</div><div class="muted">actual ${money(w.actual)}</div></div>`).join('')}</div>` : '<p class="empty">No wallets.</p>';
      $('#transactions').innerHTML = txnTable(c.transactions);
      const apps = c.apps.map((a) => `<h3>App ${esc(a.app)}</h3><dl><dt>Data</dt><dd class="mono">${esc(a.data ?? '—')}</dd><dt>Lease</dt><dd>${a.lease_until ? 'leased until ' + time(a.lease_until) : 'not leased'}</dd><dt>Reminders</dt><dd>${a.reminders.map((r) => chip(`${r.key} · ${time(r.due)}${r.interval_secs ? ' every ' + r.interval_secs + ' s' : ''}`)).join('') || '<span class="empty">none</span>'}</dd></dl>`).join('');
      const meta = Object.entries(c.metadata);
      $('#state').innerHTML = `<div><h3>Metadata</h3>${meta.length ? `<dl>${meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd class="mono">${esc(v)}</dd>`).join('')}</dl>` : '<p class="empty">none</p>'}
        <h3 style="margin-top:12px">Consent per channel</h3>${c.channels.length ? c.channels.map((s) => `<div>${esc(s.channel?.channel)} ${esc(s.channel?.number)} ${chip(s.state, statusKind(s.state))} <span class="muted">${time(s.since)}</span></div>`).join('') : '<p class="empty">No channel state yet.</p>'}</div>
        <div>${apps || '<h3>Apps</h3><p class="empty">No app data.</p>'}
        <h3 style="margin-top:12px">Activity</h3>${c.activity.length ? c.activity.map((a) => `<div><b>${esc(a.source)}</b> <span class="muted">${time(a.updated_at)}</span> ${a.activities.map((x) => chip(x.key, 'grey')).join('')}</div>`).join('') : '<p class="empty">none</p>'}</div>`;
      renderPhone(c);
    }

    function renderThreads(c) {
      const threads = new Map();
      for (const m of c.messages) {
        if (!m) continue;
        const key = `${m.channel?.channel}|${m.channel?.number}|${m.customer_number}`;
        if (!threads.has(key)) threads.set(key, { channel: m.channel, customer: m.customer_number, msgs: [] });
        threads.get(key).msgs.push(m);
      }
      const html = [...threads.values()].map((t) => {
        let lastSession = null;
        const body = t.msgs.map((m) => {
          let sep = '';
          if (m.session_id && m.session_id !== lastSession) { sep = `<div class="sep">session ${esc(m.session_id.slice(-8))}</div>`; }
          lastSession = m.session_id || lastSession;
          const cls = m.direction === 'in' ? 'in' : 'out' + (m.voice ? ' voice' : '');
          const status = m.status ? ' · ' + chip(m.status, statusKind(m.status)) : '';
          return `${sep}<div class="bubble ${cls}" data-message="${esc(m.id)}">${esc(m.text || '—')}</div><div class="meta ${m.direction === 'in' ? 'in' : 'out'}">${short(m.at)}${m.direction === 'out' && m.app ? ' · ' + esc(m.app) : ''}${status}</div>`;
        }).join('');
        return `<div class="thread" data-channel="${esc(t.channel?.channel)}"><header><span>${esc((t.channel?.channel || '').toUpperCase())} ${esc(t.channel?.number)}</span><span class="muted">${esc(t.customer)}</span></header><div class="msgs">${body}</div></div>`;
      }).join('');
      $('#threads').innerHTML = html || '<p class="empty">No messages yet. Send one from the phone on the right.</p>';
      $$('.thread .msgs').forEach((el) => { el.scrollTop = el.scrollHeight; });
    }

    function renderPhone(c) {
      options($('#phone-number'), c.numbers.map((n) => n.number), true);
      options($('#phone-app'), o ? o.apps : [], true);
      const msg = $('#msg');
      const chans = messageChannels(o);
      options(msg.channel, [...new Set(chans.map((x) => x.channel))].map((ch) => [ch, CHANNELS.find((y) => y[0] === ch)[1]]), true);
      const setNumbers = () => {
        options(msg.channel_number, chans.filter((x) => x.channel === msg.channel.value).map((x) => x.number), true);
        msg.classList.toggle('email', msg.channel.value === 'email');
      };
      setNumbers();
      msg.channel.onchange = setNumbers;
      options($('#ussd').code, o ? o.channels.ussd : [], true);
      options($('#voice').channel_number, o ? o.channels.voice : [], true);
      options($('#pay').channel_number, o ? o.channels.payment : [], true);
      options($('#pay').currency, o ? [...new Set(o.purses.map((p) => p.currency))] : [], true);
      // A call the app placed rings until answered.
      const ringing = c.channels.find((s) => s.state === 'in_session' && s.channel?.channel === 'voice');
      const screen = $('#voice-screen');
      if (ringing && (!call || call.session_id !== ringing.session_id)) {
        call = { session_id: ringing.session_id, number: ringing.channel.number, ringing: true };
        screen.textContent = `📞 Incoming call from ${ringing.channel.number}`;
        screen.className = 'screen ring';
      } else if (!ringing && call && !call.ringing) {
        // the session ended elsewhere (hang-up, timeout)
      }
      // Checkout prompts waiting for this customer.
      const prompts = c.transactions.filter((t) => t.status === 'pending_confirmation' && t.debit_customer === c.id);
      $('#prompts').innerHTML = prompts.map((t) => `<div class="prompt" data-transaction="${esc(t.id)}"><b>Pay ${esc(t.value?.currency)} ${money(t.value?.amount)}</b> to ${esc(t.credit?.label)}?<div class="row" style="margin-top:6px"><button type="button" data-approve="${esc(t.id)}">Approve</button><button type="button" class="danger" data-decline="${esc(t.id)}">Decline</button></div></div>`).join('');
    }

    const who = () => ({ org: o.id, app: $('#phone-app').value, customer_number: $('#phone-number').value });
    $$('.tabs button').forEach((b) => b.addEventListener('click', () => {
      $$('.tabs button').forEach((x) => x.classList.toggle('on', x === b));
      $$('.phone form').forEach((f) => f.classList.toggle('on', f.id === b.dataset.tab));
    }));
    $('#msg').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = e.target;
      try {
        const r = await api('/api/simulate/message', { ...who(), channel: f.channel.value, channel_number: f.channel_number.value, text: f.text.value, subject: f.subject.value || null });
        result(r.status ? (r.reply ? `App replied: ${r.reply}` : r.description) : `Not accepted: ${r.description}`, !r.status);
        f.text.value = '';
      } catch (err) { result(err.message, true); }
      refresh();
    });
    const ussdForm = $('#ussd');
    const ussdStep = async (body) => {
      try {
        const r = await api('/api/simulate/ussd', { ...who(), code: ussdForm.code.value, ...body });
        const open = r.status && !r.terminal && !body.cancel && r.reply != null;
        ussd = open ? { session_id: r.session_id } : null;
        $('#ussd-screen').textContent = r.reply ?? (body.cancel ? 'Session ended.' : r.description);
        if (!open && !body.cancel && r.reply) $('#ussd-screen').textContent += '\n\n— session ended —';
        ussdForm.send.disabled = !open; ussdForm.cancel.disabled = !open; ussdForm.dial.disabled = open;
        result(r.status ? '' : r.description, !r.status);
      } catch (err) { result(err.message, true); }
      ussdForm.text.value = '';
      refresh();
    };
    ussdForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const dial = e.submitter && e.submitter.name === 'dial';
      if (dial || !ussd) ussdStep({ text: '' }); else ussdStep({ session_id: ussd.session_id, text: ussdForm.text.value });
    });
    ussdForm.cancel.addEventListener('click', () => ussd && ussdStep({ session_id: ussd.session_id, cancel: true }));
    const voiceForm = $('#voice');
    const voiceStep = async (action, digits) => {
      const number = call ? call.number : voiceForm.channel_number.value;
      try {
        const r = await api('/api/simulate/voice', { ...who(), channel_number: number, session_id: call ? call.session_id : null, action, digits });
        call = action === 'hangup' ? null : { session_id: r.session_id, number, ringing: false };
        const screen = $('#voice-screen');
        screen.className = 'screen';
        screen.textContent = action === 'hangup' ? 'Call ended.' : `In call with ${number}\n${r.reply ? '▶ ' + r.reply : '(the app sent no dialplan)'}`;
        result(r.status ? '' : r.description, !r.status);
      } catch (err) { result(err.message, true); }
      refresh();
    };
    voiceForm.addEventListener('submit', (e) => { e.preventDefault(); voiceStep('answer'); });
    voiceForm.press.addEventListener('click', () => { voiceStep('digits', voiceForm.digits.value); voiceForm.digits.value = ''; });
    voiceForm.hangup.addEventListener('click', () => voiceStep('hangup'));
    const payForm = $('#pay');
    payForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const r = await api('/api/simulate/payment', { ...who(), channel_number: payForm.channel_number.value, currency: payForm.currency.value, amount: Number(payForm.amount.value) });
        result(r.status ? 'Payment sent.' : `Not accepted: ${r.description}`, !r.status);
      } catch (err) { result(err.message, true); }
      refresh();
    });
    $('#prompts').addEventListener('click', async (e) => {
      const t = e.target.dataset.approve || e.target.dataset.decline;
      if (!t) return;
      try {
        const r = await api('/api/simulate/payments/' + encodeURIComponent(t), { org: o.id, app: $('#phone-app').value, status: e.target.dataset.approve ? 'success' : 'failed' });
        result(r.status ? 'Answered the checkout prompt.' : r.description, !r.status);
      } catch (err) { result(err.message, true); }
      refresh();
    });
    load();
  }

  function txnTable(txns) {
    if (!txns.length) return '<p class="empty">No transactions.</p>';
    return `<table><thead><tr><th>Transaction</th><th>From</th><th>To</th><th>Amount</th><th>Status</th><th>Updated</th></tr></thead><tbody>${txns.map((t) => `<tr data-transaction="${esc(t.id)}"><td class="mono">${esc(t.id)}</td><td>${party(t.debit, t.debit_customer)}</td><td>${party(t.credit, t.credit_customer)}</td><td>${esc(t.value?.currency)} ${money(t.value?.amount)}</td><td>${chip(t.status, statusKind(t.status))}</td><td class="muted">${time(t.updated_at)}</td></tr>`).join('')}</tbody></table>`;
  }
  function party(p, customer) {
    if (!p) return '';
    const label = `<span class="muted">${esc(p.kind)}</span> ${esc(p.label)}`;
    return customer ? `<a href="/customers/${encodeURIComponent(customer)}">${label}</a>` : label;
  }

  // ---- payments ----
  function paymentsPage() {
    const load = async () => {
      const d = await api(withOrg('/api/payments'));
      $('#purses').innerHTML = d.purses.map((p) => `<div class="tile" data-purse="${esc(p.id)}"><div class="muted">${esc(p.id)}</div><div class="big">${esc(p.currency)} ${money(p.available)}</div><div class="muted">actual ${money(p.actual)}</div></div>`).join('') || '<p class="empty">No purses configured.</p>';
      $('#txn-count').textContent = d.total_transactions > d.transactions.length ? `(newest ${d.transactions.length} of ${d.total_transactions})` : `(${d.total_transactions})`;
      $('#transactions').innerHTML = txnTable(d.transactions);
    };
    const refresh = debounce(load, 200);
    onEvent((ev) => { if (ev.type === 'resync' || (ev.type === 'changed' && (ev.payments || ev.many))) refresh(); });
    load();
  }

  // ---- activity ----
  function activityPage() {
    let notes = [];
    const rates = [];
    const renderNotes = () => {
      $('#notifications').innerHTML = notes.length ? `<table><thead><tr><th>To</th><th>Notification</th><th>Customer</th><th>Reply</th><th>Latency</th></tr></thead><tbody>${notes.map((n) => `<tr><td>${chip(n.app || 'simulators', 'grey')}</td><td>${esc(n.kind)}</td><td>${n.customer ? `<a class="mono" href="/customers/${encodeURIComponent(n.customer)}">${esc(n.customer)}</a>` : ''}</td><td>${n.ok ? '' : chip('failed', 'bad')} ${esc(n.reply)}</td><td class="mono">${n.latency_ms.toFixed(1)} ms</td></tr>`).join('')}</tbody></table>` : '<p class="empty">No notifications since the console opened.</p>';
    };
    const loadConnections = async () => {
      const d = await api('/api/activity');
      $('#conn-count').textContent = `(${d.open_connections})`;
      $('#connections').innerHTML = d.connections.length ? `<table><thead><tr><th>#</th><th>Org</th><th>App</th><th>Role</th><th>Since</th></tr></thead><tbody>${d.connections.map((c) => `<tr><td>${c.id}</td><td>${esc(c.org)}</td><td>${esc(c.app)}</td><td>${chip(c.role + (c.simplex ? ' · simplex' : ''), c.role === 'app' ? '' : 'grey')}</td><td class="muted">${time(c.since)}</td></tr>`).join('')}</tbody></table>` : '<p class="empty">No app or simulator is connected.</p>';
      $('#total-cmds').textContent = d.commands;
      return d;
    };
    const refresh = debounce(loadConnections, 200);
    const draw = () => {
      const cv = $('#spark');
      // Drawn at the displayed size, so the text is not stretched.
      if (cv.clientWidth && cv.width !== cv.clientWidth) cv.width = cv.clientWidth;
      const g = cv.getContext('2d');
      g.clearRect(0, 0, cv.width, cv.height);
      const max = Math.max(1, ...rates);
      g.strokeStyle = '#e3e7ee'; g.lineWidth = 1; g.beginPath(); g.moveTo(0, cv.height - 4); g.lineTo(cv.width, cv.height - 4); g.stroke();
      g.fillStyle = '#6b7585'; g.font = '11px sans-serif'; g.fillText(`commands / s, last 60 s (max ${max})`, 4, 12);
      g.strokeStyle = '#1463d8'; g.lineWidth = 2; g.beginPath();
      rates.forEach((r, i) => { const x = (i / 59) * cv.width; const y = cv.height - 4 - (r / max) * (cv.height - 8); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
      g.stroke();
    };
    onEvent((ev) => {
      if (ev.type === 'notification') { notes.unshift(ev); notes = notes.slice(0, 200); renderNotes(); }
      if (ev.type === 'connection' || ev.type === 'resync') refresh();
      if (ev.type === 'rate') { $('#cps').textContent = ev.commands_per_sec; rates.push(ev.commands_per_sec); if (rates.length > 60) rates.shift(); draw(); $('#total-cmds').textContent = Number($('#total-cmds').textContent) + ev.commands_per_sec; }
    });
    draw();
    loadConnections().then((d) => { notes = d.notifications.slice().reverse(); renderNotes(); });
  }

  function campaignsPage() {
    // EXTENSION POINT: campaigns (see src/console/campaigns.rs). Renders nothing until the
    // overview says campaigns are available.
  }

  function loginPage() {
    $('#login').addEventListener('submit', (e) => {
      e.preventDefault();
      document.cookie = `elarian_console_token=${encodeURIComponent(e.target.token.value)}; path=/; SameSite=Strict`;
      location.reload();
    });
  }

  async function main() {
    if (page === 'login') { loginPage(); return; }
    overview = await api('/api/overview');
    if (!overview.orgs.some((o) => o.id === org)) org = overview.orgs[0]?.id || '';
    const sel = $('#org');
    options(sel, overview.orgs.map((o) => o.id));
    sel.value = org;
    sel.addEventListener('change', () => { localStorage.setItem('elarian-console-org', sel.value); location.href = page === 'customer' ? '/' : location.pathname; });
    connect();
    ({ customers: customersPage, customer: customerPage, payments: paymentsPage, activity: activityPage, campaigns: campaignsPage }[page] || (() => {}))();
  }
  main().catch((e) => { document.querySelector('main').insertAdjacentHTML('afterbegin', `<section class="card"><p class="result err">${esc(e.message)}</p></section>`); });
})();
