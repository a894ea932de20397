// The console for grid workers (api/console.py, docs/CONSOLE.md). It holds no data of its own: it keeps
// the API key in sessionStorage and calls the JSON API with it, so the API's access rules apply as they
// are. Every value from the API is put in the page with textContent, never as HTML.
"use strict";

(function () {
  const KEY_STORE = "shouwang.console.key";
  const LANG_STORE = "shouwang.console.lang";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SEVERITY_RANK = { critical: 5, high: 4, medium: 3, low: 2, info: 1 };
  const OUTCOMES = ["false_alarm", "resident_fine", "help_given", "emergency"];
  const MAX_PAGES = 10; // 10 × 200 alerts at most, for the list and for the fleet counts
  const HOUR_MS = 3600 * 1000;

  const STRINGS = {
    zh: {
      title: "守望 · 网格员控制台", signout: "退出", signin_title: "使用 API 密钥登录", key_label: "API 密钥",
      key_placeholder: "swk_…", signin: "登录",
      signin_hint: "密钥只保存在本标签页中（sessionStorage），关闭标签页即清除。",
      fleet_title: "系统概况", docs_link: "API 文档 (/docs)", metrics_link: "Prometheus 指标 (/metrics)",
      open_alerts: "待处理告警", refresh: "刷新", loading: "加载中…", none_open: "当前没有待处理的告警。",
      bad_key: "密钥无效或已被撤销。", network: "无法连接服务器：", error: "出错了：",
      updated: "更新于 ", count: (n) => `（${n} 条）`, lang_button: "English",
      by_status: "按状态", by_kind: "按类型", total: "合计", fleet_truncated: (n) => `仅统计最近 ${n} 条告警。`,
      fleet_note: (n) => `共 ${n} 条告警（全部状态）。`,
      household: "住户", grid_cell: "网格", meter: "水表", since: "异常开始", raised: "告警时间",
      ack_at: "已确认", timezone: "时区", duration: (h) => `持续约 ${h} 小时`,
      ack: "确认收到", resolve: "处理完毕", outcome: "处理结果", note_placeholder: "备注（可选）",
      acked: "已确认", working: "提交中…", done_ack: "已确认。", done_resolve: "已处理。",
      chart_caption: "每小时用水量（升），红色阴影为异常时段", no_series: "用水曲线暂无数据",
      timeline_caption: "异常时段（开始 → 告警）", start: "开始", now: "告警",
      you: (name, role) => `${name}（${ROLE_LABELS.zh[role] || role}）`,
      metrics_forbidden: "仅运维人员可查看指标。", report_link: "月度报表",
    },
    en: {
      title: "Shouwang · grid worker console", signout: "Sign out", signin_title: "Sign in with an API key",
      key_label: "API key", key_placeholder: "swk_…", signin: "Sign in",
      signin_hint: "The key is kept in this tab only (sessionStorage) and is gone when the tab closes.",
      fleet_title: "Fleet health", docs_link: "API docs (/docs)", metrics_link: "Prometheus metrics (/metrics)",
      open_alerts: "Open alerts", refresh: "Refresh", loading: "Loading…", none_open: "No open alerts.",
      bad_key: "The key is invalid or revoked.", network: "Cannot reach the server: ", error: "Error: ",
      updated: "Updated ", count: (n) => `(${n})`, lang_button: "中文",
      by_status: "By status", by_kind: "By kind", total: "Total",
      fleet_truncated: (n) => `Counting the latest ${n} alerts only.`,
      fleet_note: (n) => `${n} alerts in all (every status).`,
      household: "Household", grid_cell: "Grid cell", meter: "Meter", since: "Since", raised: "Raised",
      ack_at: "Acknowledged", timezone: "Time zone", duration: (h) => `about ${h} h`,
      ack: "Acknowledge", resolve: "Resolve", outcome: "Outcome", note_placeholder: "Note (optional)",
      acked: "Acknowledged", working: "Sending…", done_ack: "Acknowledged.", done_resolve: "Resolved.",
      chart_caption: "Water use per hour (litres); the red band is the anomalous period",
      no_series: "no water-use series yet", timeline_caption: "Anomalous period (since → raised)",
      start: "since", now: "raised",
      you: (name, role) => `${name} (${ROLE_LABELS.en[role] || role})`,
      metrics_forbidden: "Only operators may read the metrics.", report_link: "Monthly report",
    },
  };
  const KIND_LABELS = {
    zh: { no_usage: "长时间无用水", continuous_flow: "持续流水", spike: "用水激增", meter_offline: "水表离线",
      data_quality: "数据异常", routine_change: "作息变化", incident: "随手拍事件", hotspot: "事件热点" },
    en: { no_usage: "No water use", continuous_flow: "Continuous flow", spike: "Usage spike",
      meter_offline: "Meter offline", data_quality: "Data quality", routine_change: "Routine change",
      incident: "Incident report", hotspot: "Incident hotspot" },
  };
  const SEVERITY_LABELS = {
    zh: { critical: "危急", high: "高", medium: "中", low: "低", info: "提示" },
    en: { critical: "critical", high: "high", medium: "medium", low: "low", info: "info" },
  };
  const STATUS_LABELS = {
    zh: { checking: "询问老人中", raised: "待确认", acknowledged: "已确认", resolved: "已处理" },
    en: { checking: "asking the resident", raised: "raised", acknowledged: "acknowledged", resolved: "resolved" },
  };
  const OUTCOME_LABELS = {
    zh: { false_alarm: "误报", resident_fine: "居民安好", help_given: "已提供帮助", emergency: "紧急情况" },
    en: { false_alarm: "False alarm", resident_fine: "Resident is fine", help_given: "Help given",
      emergency: "Emergency" },
  };
  const ROLE_LABELS = {
    zh: { operator: "运维", supervisor: "主管", grid_worker: "网格员", family: "家属", device: "设备" },
    en: { operator: "operator", supervisor: "supervisor", grid_worker: "grid worker", family: "family",
      device: "device" },
  };

  let lang = localStorage.getItem(LANG_STORE) === "en" ? "en" : "zh";
  let alerts = []; // the open alerts last loaded
  const households = new Map(); // household id → household (or null when not visible)
  let fleet = null; // {status: {…}, kind: {…}, total, truncated} for operators
  let flash = {}; // alert id → message shown on its card after an action

  const $ = (id) => document.getElementById(id);
  const t = (key, ...args) => {
    const value = STRINGS[lang][key];
    return typeof value === "function" ? value(...args) : value;
  };
  const label = (table, value) => (table[lang] && table[lang][value]) || value;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the API ---------------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options) {
    const key = sessionStorage.getItem(KEY_STORE);
    const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
    if (options && options.body) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { ...options, headers, credentials: "omit", cache: "no-store" });
    } catch (exc) {
      throw new ApiFailure(0, t("network") + exc.message);
    }
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const message = (body && body.error && body.error.message) || `HTTP ${response.status}`;
      throw new ApiFailure(response.status, message);
    }
    return body;
  }

  async function allAlerts(query) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const params = new URLSearchParams({ ...query, limit: "200" });
      if (cursor) params.set("cursor", cursor);
      const body = await api(`/v1/alerts?${params}`);
      items.push(...body.items);
      cursor = body.next_cursor;
      if (!cursor) return { items, truncated: false };
    }
    return { items, truncated: true };
  }

  // --- sign-in ---------------------------------------------------------------------------------------

  function showSignedIn(signedIn) {
    $("signin").hidden = signedIn;
    $("alerts").hidden = !signedIn;
    $("signout").hidden = !signedIn;
    $("report-link").hidden = !signedIn; // the report page asks the API, which refuses families
    if (!signedIn) {
      $("fleet").hidden = true;
      $("metrics-out").hidden = true;
      $("alert-list").replaceChildren();
      alerts = [];
      fleet = null;
      households.clear();
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_STORE);
    showSignedIn(false);
    $("signin-error").hidden = !message;
    $("signin-error").textContent = message || "";
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    $("signin-error").hidden = true;
    await load();
  }

  function failed(exc) {
    if (exc.status === 401) {
      signOut(t("bad_key"));
      return true;
    }
    $("list-status").textContent = t("error") + exc.message;
    return false;
  }

  // --- loading ---------------------------------------------------------------------------------------

  async function load() {
    if (!sessionStorage.getItem(KEY_STORE)) return showSignedIn(false);
    showSignedIn(true);
    $("list-status").textContent = t("loading");
    try {
      const { items } = await allAlerts({ status: "open" });
      alerts = items.sort(bySeverityThenNewest);
      const missing = [...new Set(alerts.map((a) => a.household_id).filter((id) => id && !households.has(id)))];
      await Promise.all(missing.map(async (id) => {
        try {
          households.set(id, await api(`/v1/households/${encodeURIComponent(id)}`));
        } catch (exc) {
          if (exc.status === 401) throw exc;
          households.set(id, null);
        }
      }));
      await loadFleet();
      renderAlerts();
      $("list-status").textContent = t("updated") + formatTime(new Date().toISOString(), undefined);
    } catch (exc) {
      failed(exc);
    }
  }

  async function loadFleet() {
    // Only an operator may list subscriptions: a 403 means "not an operator", and the panel stays hidden.
    try {
      await api("/v1/subscriptions");
    } catch (exc) {
      if (exc.status === 403) {
        $("fleet").hidden = true;
        return;
      }
      throw exc;
    }
    const { items, truncated } = await allAlerts({});
    const status = {}, kind = {};
    for (const alert of items) {
      status[alert.status] = (status[alert.status] || 0) + 1;
      kind[alert.kind] = (kind[alert.kind] || 0) + 1;
    }
    fleet = { status, kind, total: items.length, truncated };
    renderFleet();
    $("fleet").hidden = false;
  }

  function bySeverityThenNewest(a, b) {
    const rank = (SEVERITY_RANK[b.severity] || 0) - (SEVERITY_RANK[a.severity] || 0);
    return rank || Date.parse(b.raised_at) - Date.parse(a.raised_at);
  }

  // --- rendering -------------------------------------------------------------------------------------

  function formatTime(iso, timeZone, short) {
    const options = short ? { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }
      : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false };
    const locale = lang === "zh" ? "zh-CN" : "en-GB";
    try {
      return new Intl.DateTimeFormat(locale, { ...options, timeZone }).format(new Date(iso));
    } catch (exc) { // an unknown time zone: the browser's own
      return new Intl.DateTimeFormat(locale, options).format(new Date(iso));
    }
  }

  function renderFleet() {
    if (!fleet) return;
    const table = (title, counts, labels) => {
      const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([name, n]) =>
        el("tr", {}, el("td", { text: label(labels, name) }), el("td", { class: "num", text: String(n) })));
      return el("table", {}, el("caption", { text: title }), el("tbody", {}, ...rows));
    };
    $("fleet-counts").replaceChildren(table(t("by_status"), fleet.status, STATUS_LABELS),
      table(t("by_kind"), fleet.kind, KIND_LABELS));
    $("fleet-note").textContent = fleet.truncated ? t("fleet_truncated", fleet.total) : t("fleet_note", fleet.total);
  }

  function renderAlerts() {
    $("alert-count").textContent = t("count", alerts.length);
    const list = $("alert-list");
    if (!alerts.length) {
      list.replaceChildren(el("li", { class: "hint", text: t("none_open") }));
      return;
    }
    list.replaceChildren(...alerts.map(alertCard));
  }

  function alertCard(alert) {
    const household = alert.household_id ? households.get(alert.household_id) : null;
    const zone = household ? household.timezone : undefined;
    const head = el("div", { class: "alert-head" },
      el("span", { class: `badge sev-${alert.severity}`, text: label(SEVERITY_LABELS, alert.severity) }),
      el("span", { class: "kind", text: label(KIND_LABELS, alert.kind) }),
      el("span", { class: `badge status status-${alert.status}`, text: label(STATUS_LABELS, alert.status) }));
    const who = household ? `${household.name}${household.address ? ` · ${household.address}` : ""}`
      : alert.household_id;
    const meta = el("div", { class: "meta" },
      who && el("span", { text: `${t("household")}: ${who}` }),
      alert.grid_cell && el("span", { text: `${t("grid_cell")}: ${alert.grid_cell}` }),
      alert.meter_id && el("span", { text: `${t("meter")}: ${alert.meter_id}` }));
    const hours = Math.max(0, (Date.parse(alert.raised_at) - Date.parse(alert.since)) / HOUR_MS);
    const times = el("div", { class: "meta" },
      el("span", { text: `${t("since")}: ${formatTime(alert.since, zone)}` }),
      el("span", { text: `${t("raised")}: ${formatTime(alert.raised_at, zone)}` }),
      el("span", { text: t("duration", hours < 10 ? hours.toFixed(1) : Math.round(hours)) }),
      alert.acknowledged_at && el("span", { text: `${t("ack_at")}: ${formatTime(alert.acknowledged_at, zone)}` }),
      el("span", { text: `${t("timezone")}: ${zone || Intl.DateTimeFormat().resolvedOptions().timeZone}` }));
    const explanation = el("p", { class: "explanation",
      text: (alert.explanation && (alert.explanation[lang] || alert.explanation.zh || alert.explanation.en)) || "" });
    return el("li", { class: `alert sev-${alert.severity}`, "data-alert-id": alert.id },
      head, meta, times, explanation, chart(alert, zone), actions(alert));
  }

  function actions(alert) {
    const message = el("span", { class: "hint result", role: "status", text: flash[alert.id] || "" });
    const ack = el("button", { type: "button", class: "ack", disabled: alert.status !== "raised",
      text: alert.status === "raised" ? t("ack") : t("acked") });
    ack.addEventListener("click", () => act(alert, "ack", null, [ack], message));
    const outcome = el("select", { class: "outcome", "aria-label": t("outcome") },
      ...OUTCOMES.map((o) => el("option", { value: o, text: label(OUTCOME_LABELS, o) })));
    const note = el("input", { class: "note", type: "text", maxlength: "1000", placeholder: t("note_placeholder"),
      "aria-label": t("note_placeholder") });
    const resolve = el("button", { type: "button", class: "resolve primary", text: t("resolve") });
    resolve.addEventListener("click", () => act(alert, "resolve",
      { outcome: outcome.value, note: note.value.trim() || null }, [ack, resolve], message));
    return el("div", { class: "actions" }, ack, outcome, note, resolve, message);
  }

  async function act(alert, action, body, buttons, message) {
    buttons.forEach((b) => { b.disabled = true; });
    message.textContent = t("working");
    try {
      await api(`/v1/alerts/${encodeURIComponent(alert.id)}/${action}`,
        { method: "POST", body: body ? JSON.stringify(body) : undefined });
      flash = { [alert.id]: action === "ack" ? t("done_ack") : t("done_resolve") };
      await load();
    } catch (exc) {
      if (!failed(exc)) message.textContent = t("error") + exc.message;
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // --- the chart -------------------------------------------------------------------------------------

  // facts.usage_hourly_l: comma-separated litres per hour, the last value being the hour that ends at
  // raised_at (docs/CONSOLE.md). Anything else is "no series".
  function hourlySeries(alert) {
    const raw = alert.facts && alert.facts.usage_hourly_l;
    if (typeof raw !== "string" || !raw.trim()) return null;
    const values = raw.split(",").map((v) => Number(v.trim()));
    if (values.some((v) => !Number.isFinite(v) || v < 0) || values.length > 24 * 31) return null;
    return values;
  }

  function chart(alert, zone) {
    const W = 640, H = 170, left = 44, right = 12, top = 12, bottom = 34;
    const plotW = W - left - right, plotH = H - top - bottom;
    const raised = Date.parse(alert.raised_at), since = Date.parse(alert.since);
    const series = hourlySeries(alert);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: series ? "usage" : "timeline-chart" });
    let caption;
    if (series) {
      const start = raised - series.length * HOUR_MS;
      const x = (ms) => left + ((ms - start) / (raised - start)) * plotW;
      const max = Math.max(...series, 1);
      const y = (v) => top + plotH - (v / max) * plotH;
      root.append(svg("title", {}, `${t("chart_caption")}: ${label(KIND_LABELS, alert.kind)}`));
      const from = Math.max(since, start);
      root.append(svg("rect", { class: "anomaly", x: x(from), y: top, width: Math.max(0, x(raised) - x(from)),
        height: plotH }));
      const step = plotW / series.length;
      series.forEach((v, i) => {
        root.append(svg("rect", { class: "bar-rect", x: left + i * step + step * 0.12, y: y(v),
          width: Math.max(1, step * 0.76), height: top + plotH - y(v) }));
      });
      root.append(svg("line", { class: "axis", x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH }));
      root.append(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: top + plotH }));
      root.append(svg("text", { x: left - 4, y: top + 10, "text-anchor": "end" }, `${+max.toFixed(1)} L`));
      root.append(svg("text", { x: left - 4, y: top + plotH, "text-anchor": "end" }, "0"));
      if (since > start) {
        root.append(svg("line", { class: "marker", x1: x(since), y1: top, x2: x(since), y2: top + plotH }));
        root.append(svg("text", { class: "mark", x: x(since), y: H - 4, "text-anchor": "middle" },
          `${t("start")} ${formatTime(alert.since, zone, true)}`));
      }
      root.append(svg("text", { x: left, y: top + plotH + 14 }, formatTime(new Date(start).toISOString(), zone, true)));
      root.append(svg("text", { x: left + plotW, y: top + plotH + 14, "text-anchor": "end" },
        formatTime(alert.raised_at, zone, true)));
      caption = t("chart_caption");
    } else {
      // No readings history yet: the timeline, with the anomalous period marked.
      const span = Math.max(raised - since, HOUR_MS);
      const start = since - span * 0.3, end = raised + span * 0.08;
      const x = (ms) => left + ((ms - start) / (end - start)) * plotW;
      const mid = top + plotH * 0.62;
      root.append(svg("title", {}, `${t("timeline_caption")} — ${t("no_series")}`));
      root.append(svg("rect", { class: "anomaly", x: x(since), y: top, width: x(raised) - x(since), height: plotH }));
      root.append(svg("text", { class: "nodata", x: left + plotW / 2, y: top + 22, "text-anchor": "middle" },
        t("no_series")));
      root.append(svg("line", { class: "timeline", x1: left, y1: mid, x2: left + plotW, y2: mid }));
      root.append(svg("line", { class: "timeline-anomaly", x1: x(since), y1: mid, x2: x(raised), y2: mid }));
      for (const [ms, iso, name, anchor] of [[since, alert.since, t("start"), "start"],
        [raised, alert.raised_at, t("now"), "end"]]) {
        root.append(svg("line", { class: "marker", x1: x(ms), y1: top + 30, x2: x(ms), y2: top + plotH }));
        root.append(svg("text", { class: "mark", x: x(ms), y: H - 4, "text-anchor": anchor },
          `${name} ${formatTime(iso, zone, true)}`));
      }
      caption = `${t("timeline_caption")} · ${t("no_series")}`;
    }
    return el("figure", { class: "chart" }, root, el("figcaption", { class: "caption", text: caption }));
  }

  // --- language and wiring ---------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
    });
    const button = $("lang");
    button.textContent = t("lang_button");
    button.lang = lang === "zh" ? "en" : "zh-CN";
    if (!$("alerts").hidden && alerts) renderAlerts();
    renderFleet();
  }

  async function showMetrics(event) {
    event.preventDefault();
    const out = $("metrics-out");
    try {
      const response = await fetch("/metrics", { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE)}` },
        credentials: "omit", cache: "no-store" });
      out.textContent = response.ok ? await response.text() : t("metrics_forbidden");
    } catch (exc) {
      out.textContent = t("network") + exc.message;
    }
    out.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut(null));
    $("refresh").addEventListener("click", () => { flash = {}; load(); });
    $("metrics-link").addEventListener("click", showMetrics);
    $("lang").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_STORE, lang);
      applyLanguage();
    });
    applyLanguage();
    load();
  });
})();
