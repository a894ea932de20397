// The monthly report page (api/console.py, docs/CONSOLE.md). Like the console it holds no data of its own: it
// signs in with an API key kept in sessionStorage and reads GET /v1/reports/monthly, so the API's scopes apply
// (supervisors their community, grid workers their cells, families never). `shouwang report --format pdf` gives
// it the report in the article's data-report attribute instead, and prints it with headless Chromium. Values
// are put in the page with textContent only; the charts are SVG drawn here (nothing is fetched from elsewhere).
"use strict";

(function () {
  const KEY_STORE = "shouwang.console.key"; // the console's: signing in on one signs in on the other
  const LANG_STORE = "shouwang.console.lang";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SEVERITIES = ["critical", "high", "medium", "low", "info"];

  const STRINGS = {
    zh: {
      title: "守望 · 社区月度报表", to_console: "控制台", signout: "退出", signin_title: "使用 API 密钥登录",
      key_label: "API 密钥", signin: "登录", lang_button: "English",
      signin_hint: "密钥只保存在本标签页中（sessionStorage），关闭标签页即清除。",
      month_label: "月份", community_label: "社区", community_hint: "留空：您可见的全部", show: "查看",
      print: "打印 / 存为 PDF", xlsx: "下载 Excel", loading: "加载中…", bad_key: "密钥无效或已被撤销。",
      forbidden: "此账号无权查看报表（报表仅供运维、主管和网格员查看）。", not_found: "没有找到该社区，或它不在您的范围内。",
      network: "无法连接服务器：", error: "出错了：", downloaded: "已下载 Excel 工作簿。",
      heading: (who, y, m) => `${who} · ${y}年${m}月 社区月度报表`, all: "全部社区",
      period: (a, b, zone, prev) => `统计周期 ${a} 至 ${b}（${zone}），与上月（${prev}）对比`,
      cells: (list) => `网格：${list}`, generated: "生成于 ",
      previous: "上月", change: "变化", this_month: "本月", figure: "指标", same: "持平", none: "（无）",
      s_overview: "概况", s_homes: "住户与水表", s_alerts: "告警", s_response: "响应时效",
      s_outcomes: "处置结果", s_residents: "居民上报（随手拍）", s_delivery: "通知送达",
      c_kind: "告警 · 按类型", c_severity: "告警 · 按级别", c_ack: "确认用时中位数（分钟）· 按级别",
      c_outcome: "处置结果", c_category: "居民上报事件 · 按类别", c_channel: "通知 · 按渠道",
      legend_now: "本月", legend_prev: "上月", no_data: "本月与上月均无数据",
      offline_title: "离线超过一天的水表", cases_title: "本月紧急救助与上门帮助", top_title: "居民关注排行（前十）",
      meter: "水表", grid_cell: "网格", since: "离线开始", hours: "离线时长（小时）", still: "仍离线", yes: "是",
      no: "否", date: "日期", kind: "类型", outcome: "处置结果", alert_id: "告警编号", rank: "排名",
      category: "类别", reports: "报告数", households: "户数", incidents: "事件数", severity: "级别",
      alerts_n: "告警", ack_med: "确认中位（分钟）", ack_p90: "确认90分位（分钟）", res_med: "处置中位（分钟）",
      res_p90: "处置90分位（分钟）", escalated: "越级上报", footer: "口径见 alerts/reports.py；本月与上月按社区所在时区的自然月统计。",
    },
    en: {
      title: "Shouwang · community monthly report", to_console: "Console", signout: "Sign out",
      signin_title: "Sign in with an API key", key_label: "API key", signin: "Sign in", lang_button: "中文",
      signin_hint: "The key is kept in this tab only (sessionStorage) and is gone when the tab closes.",
      month_label: "Month", community_label: "Community", community_hint: "empty: all you may see", show: "Show",
      print: "Print / save as PDF", xlsx: "Download Excel", loading: "Loading…", bad_key: "The key is invalid or revoked.",
      forbidden: "This key may not read reports (operators, supervisors and grid workers only).",
      not_found: "No such community, or it is outside your scope.", network: "Cannot reach the server: ",
      error: "Error: ", downloaded: "The Excel workbook was downloaded.",
      heading: (who, y, m) => `${who} · monthly report ${y}-${String(m).padStart(2, "0")}`, all: "All communities",
      period: (a, b, zone, prev) => `${a} to ${b} (${zone}), compared with the month before (${prev})`,
      cells: (list) => `Grid cells: ${list}`, generated: "Generated ",
      previous: "Previous", change: "Change", this_month: "This month", figure: "Figure", same: "same",
      none: "(none)", s_overview: "Overview", s_homes: "Households and meters", s_alerts: "Alerts",
      s_response: "Response times", s_outcomes: "Outcomes", s_residents: "Residents' reports",
      s_delivery: "Notification delivery", c_kind: "Alerts by kind", c_severity: "Alerts by severity",
      c_ack: "Median time to acknowledge (minutes) by severity", c_outcome: "Outcomes",
      c_category: "Residents' reports by category", c_channel: "Notifications by channel",
      legend_now: "this month", legend_prev: "previous month", no_data: "no data this month or the month before",
      offline_title: "Meters offline for more than a day", cases_title: "Emergencies and help given this month",
      top_title: "Top concerns (top ten)", meter: "Meter", grid_cell: "Grid cell", since: "Offline since",
      hours: "Offline (hours)", still: "Still offline", yes: "yes", no: "no", date: "Date", kind: "Kind",
      outcome: "Outcome", alert_id: "Alert", rank: "Rank", category: "Category", reports: "Reports",
      households: "Households", incidents: "Incidents", severity: "Severity", alerts_n: "Alerts",
      ack_med: "Ack median (min)", ack_p90: "Ack p90 (min)", res_med: "Resolve median (min)",
      res_p90: "Resolve p90 (min)", escalated: "Escalated",
      footer: "Definitions in alerts/reports.py; months are calendar months in the community's time zone.",
    },
  };
  // Figures by their path in the report's sections: label, and how a value is shown.
  const FIGURES = {
    zh: {
      "households.enrolled": "在册户数", "households.with_consent": "已授权户数",
      "households.with_resident": "可先问老人本人的户数", "meters.enrolled": "水表数",
      "meters.reporting": "正常上报的水表", "meters.offline_over_1d": "离线超过一天的水表",
      "alerts.total": "告警总数", "alerts.silenced": "静默记录（未通知）", "check_ins.asked": "先问老人本人",
      "check_ins.settled_with_resident": "老人本人答复后结案", "check_ins.carers_told": "转告家属和网格员",
      "response.escalated_past_first_tier": "越过网格员上报", "outcomes.resolved": "已结案", "outcomes.open": "未结案",
      "outcomes.by_outcome.emergency": "紧急救助", "outcomes.by_outcome.help_given": "上门帮助",
      "residents_reports.incidents": "居民上报事件", "residents_reports.reports": "报告数（含合并）",
      "residents_reports.hotspots": "高发热点", "residents_reports.closed": "已办结",
      "residents_reports.close_median_s": "办结用时中位数（小时）", "delivery.total": "通知总数",
      "delivery.dead_letters": "最终失败（死信）", "delivery.by_status.delivered": "已送达",
      "delivery.by_status.pending": "待发送",
    },
    en: {
      "households.enrolled": "Households enrolled", "households.with_consent": "With consent",
      "households.with_resident": "Resident asked first", "meters.enrolled": "Meters",
      "meters.reporting": "Meters reporting", "meters.offline_over_1d": "Meters offline over a day",
      "alerts.total": "Alerts", "alerts.silenced": "Silenced (not notified)", "check_ins.asked": "Resident asked first",
      "check_ins.settled_with_resident": "Settled with the resident", "check_ins.carers_told": "Carers told after asking",
      "response.escalated_past_first_tier": "Escalated past the grid worker", "outcomes.resolved": "Resolved",
      "outcomes.open": "Open", "outcomes.by_outcome.emergency": "Emergencies",
      "outcomes.by_outcome.help_given": "Help given", "residents_reports.incidents": "Residents' reports",
      "residents_reports.reports": "Reports (before merging)", "residents_reports.hotspots": "Hotspots",
      "residents_reports.closed": "Closed", "residents_reports.close_median_s": "Median time to close (hours)",
      "delivery.total": "Notifications", "delivery.dead_letters": "Dead letters",
      "delivery.by_status.delivered": "Delivered", "delivery.by_status.pending": "Pending",
    },
  };
  const LABELS = {
    zh: {
      kind: { no_usage: "长时间未用水", continuous_flow: "持续流水", spike: "用水突增", meter_offline: "水表离线",
        data_quality: "数据异常", routine_change: "作息变化" },
      severity: { critical: "紧急", high: "高", medium: "中", low: "低", info: "提示" },
      outcome: { false_alarm: "误报", resident_fine: "老人安好", help_given: "上门帮助", emergency: "紧急救助",
        condition_cleared: "情况自行解除" },
      category: { clutter: "楼道堆物", water_pipe: "水管漏水停水", ebike: "电动车停放充电",
        noise_dispute: "噪音与邻里纠纷", pets: "宠物与犬只", vulnerable_person: "老人或弱势人员求助",
        hazard: "火灾燃气用电隐患", sanitation: "环境卫生", facility: "公共设施损坏", other: "其他" },
      channel: { webhook: "Webhook", wecom_robot: "企业微信群机器人", dingtalk_robot: "钉钉群机器人",
        feishu_bot: "飞书群机器人", wecom_app: "企业微信应用消息", sms: "短信", email: "邮件" },
    },
    en: {
      kind: { no_usage: "No water use", continuous_flow: "Continuous flow", spike: "Usage spike",
        meter_offline: "Meter offline", data_quality: "Data quality", routine_change: "Routine change" },
      severity: { critical: "critical", high: "high", medium: "medium", low: "low", info: "info" },
      outcome: { false_alarm: "False alarm", resident_fine: "Resident fine", help_given: "Help given",
        emergency: "Emergency", condition_cleared: "Condition cleared" },
      category: { clutter: "Stairwell clutter", water_pipe: "Water pipes", ebike: "E-bikes",
        noise_dispute: "Noise, disputes", pets: "Pets", vulnerable_person: "Vulnerable person", hazard: "Hazards",
        sanitation: "Sanitation", facility: "Public facilities", other: "Other" },
      channel: { webhook: "Webhook", wecom_robot: "WeCom group robot", dingtalk_robot: "DingTalk robot",
        feishu_bot: "Feishu bot", wecom_app: "WeCom app", sms: "SMS", email: "Email" },
    },
  };

  const article = document.getElementById("report");
  const embedded = article.dataset.report ? JSON.parse(article.dataset.report) : null;
  const params = new URLSearchParams(location.search);
  const asked = params.get("lang") || article.dataset.lang || localStorage.getItem(LANG_STORE);
  let lang = asked === "en" ? "en" : "zh";
  let report = embedded;
  let downloadPending = params.get("download") === "xlsx";

  const $ = (id) => document.getElementById(id);
  const t = (key, ...args) => {
    const value = STRINGS[lang][key];
    return typeof value === "function" ? value(...args) : value;
  };
  const label = (table, key) => (LABELS[lang][table] && LABELS[lang][table][key]) || key;

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

  // --- figures ---------------------------------------------------------------------------------------

  function leaf(path) {
    let node = report.sections;
    for (const part of path.split(".")) node = node ? node[part] : undefined;
    return node;
  }

  const minutes = (s) => (s === null || s === undefined ? null : Math.round(s / 6) / 10);
  const hours = (s) => (s === null || s === undefined ? null : Math.round(s / 360) / 10);
  const paren = (a, b) => (lang === "zh" ? `${a}（${b}）` : `${a} (${b})`);
  const shown = (v) => (v === null || v === undefined ? "—" : String(v));

  function changeText(now, before) {
    if (now === null || now === undefined || before === null || before === undefined) return "—";
    const delta = Math.round((now - before) * 10) / 10;
    return delta > 0 ? `▲ ${delta}` : delta < 0 ? `▼ ${-delta}` : t("same");
  }

  function valueOf(path, scale) {
    const node = leaf(path);
    const convert = scale || ((v) => v);
    return { now: convert(node.value), before: convert(node.previous) };
  }

  function kpi(path, scale) {
    const { now, before } = valueOf(path, scale);
    return el("div", { class: "kpi", "data-figure": path },
      el("span", { class: "kpi-label", text: FIGURES[lang][path] }),
      el("span", { class: "kpi-value", text: shown(now) }),
      el("span", { class: "kpi-prev", text: `${t("previous")} ${shown(before)} · ${changeText(now, before)}` }));
  }

  function figureTable(paths) {
    const head = el("tr", {}, ...[t("figure"), t("this_month"), t("previous"), t("change")].map((h) =>
      el("th", { text: h })));
    const rows = paths.map(([path, scale]) => {
      const { now, before } = valueOf(path, scale);
      return el("tr", { "data-figure": path }, el("td", { text: FIGURES[lang][path] }),
        el("td", { class: "num now", text: shown(now) }), el("td", { class: "num", text: shown(before) }),
        el("td", { class: "num", text: changeText(now, before) }));
    });
    return el("table", { class: "figures" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function listTable(title, headings, rows) {
    const body = rows.length ? rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: shown(c) }))))
      : [el("tr", {}, el("td", { colspan: String(headings.length), class: "hint", text: t("none") }))];
    return el("table", { class: "list" }, el("caption", { text: title }),
      el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { text: h })))), el("tbody", {}, ...body));
  }

  // --- charts: this month beside the previous one, as horizontal bars --------------------------------

  function barChart(name, title, rows) {
    const shownRows = rows.filter((r) => (r.now || 0) > 0 || (r.before || 0) > 0);
    const figure = el("figure", { class: "report-chart", "data-chart": name });
    figure.append(el("figcaption", { text: title }));
    if (!shownRows.length) {
      figure.append(el("p", { class: "hint nodata", text: t("no_data") }));
      return figure;
    }
    const W = 460, left = 128, right = 44, rowH = 30, top = 6;
    const H = top + shownRows.length * rowH + 24;
    const max = Math.max(1, ...shownRows.map((r) => Math.max(r.now || 0, r.before || 0)));
    const x = (v) => ((v || 0) / max) * (W - left - right);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "bars", "aria-label": title });
    shownRows.forEach((r, i) => {
      const y = top + i * rowH;
      root.append(svg("text", { class: "row-label", x: left - 6, y: y + 15, "text-anchor": "end" }, r.label));
      root.append(svg("rect", { class: "bar-now", x: left, y: y + 3, width: Math.max(x(r.now), 1), height: 12,
        "data-value": r.now ?? 0 }));
      root.append(svg("rect", { class: "bar-prev", x: left, y: y + 16, width: Math.max(x(r.before), 1), height: 8,
        "data-value": r.before ?? 0 }));
      root.append(svg("text", { class: "bar-value", x: left + x(r.now) + 4, y: y + 13 }, shown(r.now)));
    });
    root.append(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: H - 22 }));
    const legendY = H - 8;
    root.append(svg("rect", { class: "legend-now", x: left, y: legendY - 9, width: 12, height: 9 }));
    root.append(svg("text", { x: left + 16, y: legendY }, t("legend_now")));
    root.append(svg("rect", { class: "legend-prev", x: left + 90, y: legendY - 8, width: 12, height: 7 }));
    root.append(svg("text", { x: left + 106, y: legendY }, t("legend_prev")));
    figure.append(root);
    return figure;
  }

  function rowsOf(path, names, table, scale) {
    const group = leaf(path) || {};
    const convert = scale || ((v) => v);
    return (names || Object.keys(group)).filter((k) => group[k]).map((k) => ({
      label: label(table, k), now: convert(group[k].value), before: convert(group[k].previous) }));
  }

  // --- the report --------------------------------------------------------------------------------------

  function section(title, ...children) {
    return el("section", { class: "report-section" }, el("h2", { text: title }), ...children);
  }

  function render() {
    if (!report) return;
    const [year, month] = report.month.split("-").map(Number);
    const lastDay = new Date(year, month, 0).getDate();
    const who = report.community || t("all");
    const head = el("header", { class: "report-head" },
      el("h1", { id: "report-title", text: t("heading", who, year, month) }),
      el("p", { class: "hint", text: t("period", `${report.month}-01`, `${report.month}-${String(lastDay).padStart(2, "0")}`,
        report.timezone, report.previous_month) }),
      report.grid_cells ? el("p", { class: "hint", text: t("cells", report.grid_cells.join(", ")) }) : null);

    const overview = section(t("s_overview"), el("div", { class: "kpis" },
      kpi("households.enrolled"), kpi("alerts.total"), kpi("outcomes.by_outcome.emergency"),
      kpi("outcomes.by_outcome.help_given"), kpi("response.escalated_past_first_tier"),
      kpi("residents_reports.incidents"), kpi("meters.offline_over_1d"), kpi("delivery.dead_letters")));

    const offline = (leaf("meters.offline_list") || []).map((m) => [m.meter_id, m.grid_cell, m.since.slice(0, 10),
      m.offline_h, m.still_offline ? t("yes") : t("no")]);
    const homes = section(t("s_homes"), figureTable([["households.enrolled"], ["households.with_consent"],
      ["households.with_resident"], ["meters.enrolled"], ["meters.reporting"], ["meters.offline_over_1d"]]),
    listTable(t("offline_title"), [t("meter"), t("grid_cell"), t("since"), t("hours"), t("still")], offline));

    const alerts = section(t("s_alerts"), el("div", { class: "charts" },
      barChart("kind", t("c_kind"), rowsOf("alerts.by_kind", null, "kind")),
      barChart("severity", t("c_severity"), rowsOf("alerts.by_severity", SEVERITIES, "severity"))),
    figureTable([["alerts.total"], ["alerts.silenced"], ["check_ins.asked"], ["check_ins.settled_with_resident"],
      ["check_ins.carers_told"]]));

    const bySeverity = leaf("response.by_severity") || {};
    const responseRows = SEVERITIES.filter((s) => bySeverity[s] && (bySeverity[s].alerts.value ||
      bySeverity[s].alerts.previous)).map((s) => {
      const r = bySeverity[s];
      const both = (f, scale) => paren(shown(scale(r[f].value)), shown(scale(r[f].previous)));
      const same = (v) => v;
      return [label("severity", s), both("alerts", same), both("ack_median_s", minutes), both("ack_p90_s", minutes),
        both("resolve_median_s", minutes), both("resolve_p90_s", minutes), both("escalated", same)];
    });
    const ackRows = SEVERITIES.filter((s) => bySeverity[s]).map((s) => ({ label: label("severity", s),
      now: minutes(bySeverity[s].ack_median_s.value), before: minutes(bySeverity[s].ack_median_s.previous) }));
    const response = section(t("s_response"),
      listTable(paren(t("this_month"), t("previous")), [t("severity"), t("alerts_n"), t("ack_med"), t("ack_p90"),
        t("res_med"), t("res_p90"), t("escalated")], responseRows),
      el("div", { class: "charts" }, barChart("ack", t("c_ack"), ackRows),
        figureTable([["response.escalated_past_first_tier"]])));

    const cases = (leaf("outcomes.cases") || []).map((c) => [c.date, label("kind", c.kind), label("outcome", c.outcome),
      c.grid_cell, c.alert_id]);
    const outcomes = section(t("s_outcomes"), el("div", { class: "charts" },
      barChart("outcome", t("c_outcome"), rowsOf("outcomes.by_outcome", null, "outcome")),
      figureTable([["outcomes.resolved"], ["outcomes.open"], ["outcomes.by_outcome.emergency"],
        ["outcomes.by_outcome.help_given"]])),
    listTable(t("cases_title"), [t("date"), t("kind"), t("outcome"), t("grid_cell"), t("alert_id")], cases));

    const top = (leaf("residents_reports.top_concerns") || []).map((c) => [c.rank,
      lang === "en" ? c.label_en : c.label_zh, c.reports, c.households, c.incidents]);
    const residents = section(t("s_residents"), el("div", { class: "charts" },
      barChart("category", t("c_category"), rowsOf("residents_reports.by_category", null, "category")),
      figureTable([["residents_reports.incidents"], ["residents_reports.reports"], ["residents_reports.hotspots"],
        ["residents_reports.closed"], ["residents_reports.close_median_s", hours]])),
    listTable(t("top_title"), [t("rank"), t("category"), t("reports"), t("households"), t("incidents")], top));

    const byType = leaf("delivery.by_type") || {};
    const channelRows = Object.keys(byType).map((k) => {
      const sum = (key) => Object.values(byType[k]).reduce((n, leafOf) => n + (leafOf[key] || 0), 0);
      return { label: label("channel", k), now: sum("value"), before: sum("previous") };
    });
    const delivery = section(t("s_delivery"), el("div", { class: "charts" },
      barChart("channel", t("c_channel"), channelRows),
      figureTable([["delivery.total"], ["delivery.by_status.delivered"], ["delivery.by_status.pending"],
        ["delivery.dead_letters"]])));

    const generated = new Date(report.generated_at);
    let when;
    try {
      when = new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium", timeStyle: "short",
        timeZone: report.timezone }).format(generated);
    } catch (exc) {
      when = report.generated_at;
    }
    const footer = el("footer", { class: "hint report-foot" }, el("span", { text: t("generated") + when }),
      el("span", { text: t("footer") }));
    article.replaceChildren(head, overview, homes, alerts, response, outcomes, residents, delivery, footer);
    document.title = `${t("title")} · ${who} ${report.month}`;
    document.body.dataset.ready = "1";
  }

  // --- the API (not in a printed file) ---------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function query() {
    const q = new URLSearchParams({ month: $("month").value });
    if ($("community").value.trim()) q.set("community", $("community").value.trim());
    return q;
  }

  async function call(path) {
    let response;
    try {
      response = await fetch(path, { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE)}` },
        credentials: "omit", cache: "no-store" });
    } catch (exc) {
      throw new ApiFailure(0, t("network") + exc.message);
    }
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new ApiFailure(response.status, (body && body.error && body.error.message) || `HTTP ${response.status}`);
    }
    return response;
  }

  function failed(exc) {
    report = null;
    article.replaceChildren();
    if (exc.status === 401) {
      sessionStorage.removeItem(KEY_STORE);
      signedIn(false);
      $("signin-error").hidden = false;
      $("signin-error").textContent = t("bad_key");
      return;
    }
    const says = { 403: t("forbidden"), 404: t("not_found") }[exc.status] || t("error") + exc.message;
    $("status").textContent = says;
    $("status").classList.add("error");
  }

  async function load() {
    if (!sessionStorage.getItem(KEY_STORE)) return signedIn(false);
    signedIn(true);
    $("status").textContent = t("loading");
    $("status").classList.remove("error");
    history.replaceState(null, "", `?${query()}`);
    try {
      report = await (await call(`/v1/reports/monthly?${query()}`)).json();
      $("status").textContent = "";
      render();
      if (downloadPending) {
        downloadPending = false;
        await download();
      }
    } catch (exc) {
      failed(exc);
    }
  }

  async function download() {
    try {
      const blob = await (await call(`/v1/reports/monthly.xlsx?${query()}`)).blob();
      const name = `report-${$("community").value.trim() || "all"}-${$("month").value}.xlsx`;
      const link = el("a", { href: URL.createObjectURL(blob), download: name });
      document.body.append(link);
      link.click();
      link.remove();
      $("status").textContent = t("downloaded");
    } catch (exc) {
      failed(exc);
    }
  }

  function signedIn(yes) {
    $("signin").hidden = yes;
    $("controls").hidden = !yes;
    $("signout").hidden = !yes;
  }

  function lastMonth() {
    const now = new Date();
    const d = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
  }

  // --- language and wiring ---------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
    });
    $("lang").textContent = t("lang_button");
    $("lang").lang = lang === "zh" ? "en" : "zh-CN";
    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("lang").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_STORE, lang);
      applyLanguage();
    });
    if (embedded) { // a printed file: the report is in the page, there is no server to ask
      document.querySelectorAll(".no-print").forEach((node) => { node.hidden = true; });
      applyLanguage();
      return;
    }
    $("month").value = /^\d{4}-\d{2}$/.test(params.get("month") || "") ? params.get("month") : lastMonth();
    $("community").value = params.get("community") || "";
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key").value.trim();
      $("key").value = "";
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      $("signin-error").hidden = true;
      load();
    });
    $("signout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      report = null;
      article.replaceChildren();
      $("status").textContent = "";
      signedIn(false);
    });
    $("pick").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    $("print").addEventListener("click", () => window.print());
    $("xlsx").addEventListener("click", () => download());
    applyLanguage();
    load();
  });
})();
