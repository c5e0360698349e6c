// The county dashboard (参保工作看板): coverage against the target per township and grid, collection progress,
// arrears, reconciliation. Everything comes from this server's API with the viewer's bearer token (the same
// token and the same tab storage as the grid worker's page, so a drill-down link opens the grid page signed in).
(function () {
  "use strict";
  const TOKEN_KEY = "ledger.web.token";
  const state = { token: null, me: null, code: "", year: "", asOf: "", data: null };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function yuan(fen) {
    if (fen === null || fen === undefined) return "—";
    const sign = fen < 0 ? "-" : "";
    const a = Math.abs(fen);
    const whole = Math.floor(a / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + whole + "." + String(a % 100).padStart(2, "0");
  }

  function points(bp) { return (Math.floor(bp / 100)) + "." + String(bp % 100).padStart(2, "0"); }

  // The place's label without the county in front ("汉滨区 镇 610902100" -> "镇 610902100").
  function shortLabel(label) {
    const parts = String(label || "").split(" ");
    return parts.length > 1 && /[区县市]$/.test(parts[0]) ? parts.slice(1).join(" ") : String(label || "");
  }

  // ------------------------------------------------------------------ the address
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    return { code: (p.get("code") || "").trim(), year: (p.get("year") || "").trim(), asOf: (p.get("as_of") || "").trim() };
  }

  function writeHash() {
    const p = new URLSearchParams();
    if (state.code) p.set("code", state.code);
    if (state.year) p.set("year", state.year);
    if (state.asOf) p.set("as_of", state.asOf);
    history.replaceState(null, "", location.pathname + (p.toString() ? "#" + p.toString() : ""));
  }

  function takeTokenFromAddress() {
    const url = new URL(location.href);
    if (!url.searchParams.has("token")) return;
    const token = (url.searchParams.get("token") || "").trim();
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }

  // ------------------------------------------------------------------ the API
  class ApiError extends Error {
    constructor(status, body) { super((body && body.message) || "HTTP " + status); this.status = status; this.body = body || {}; }
  }

  async function api(path, params, kind) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);
    let response;
    try {
      response = await fetch(url, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, { code: "NETWORK" });
    }
    if (!response.ok) {
      let body = {};
      try { body = await response.json(); } catch (e) { /* keep the status */ }
      throw new ApiError(response.status, body);
    }
    if (kind === "text") return response.text();
    if (kind === "blob") return response.blob();
    return response.json();
  }

  function chineseOf(message) {
    const m = /\(([^()]*[\u4e00-\u9fff][^()]*)\)\s*$/.exec(message || "");
    if (m) return m[1];
    const n = /（([^（）]*)）\s*$/.exec(message || "");
    return n ? n[1] : "";
  }

  function describeError(err) {
    const b = err.body;
    switch (err.status) {
      case 0: return ["无法连接服务器", "请检查网络后重试。"];
      case 401: return ["访问令牌无效或已过期", chineseOf(b.message) || "请重新输入访问令牌。"];
      case 403: return ["没有权限查看", chineseOf(b.message) || "你的令牌不能查看这个区县或乡镇。"];
      case 404: return ["没有找到", chineseOf(b.message) || "账本中没有这个区县、乡镇或年度的数据。"];
      case 422: return ["查询条件有误", chineseOf(b.message) || "请检查代码（区县 6 位、乡镇 9 位）和日期。"];
      default: return ["服务器出错", "请稍后重试（" + (b.code || err.status) + "）。"];
    }
  }

  function showMessage(title, text, info) {
    $("message-title").textContent = title;
    $("message-text").textContent = text;
    $("message").classList.toggle("info", !!info);
    $("message").hidden = false;
  }

  // ------------------------------------------------------------------ login
  function showLogin(error) {
    document.body.dataset.state = "login";
    $("login").hidden = false;
    $("controls").hidden = true;
    $("board").hidden = true;
    $("who").hidden = true;
    $("login-error").hidden = !error;
    $("login-error").textContent = error || "";
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    $("token-input").value = "";
    showLogin("");
  }

  // The places the viewer may open: counties (clerks), townships (grid workers holding one), or typed (auditors).
  function places() {
    return ((state.me && state.me.scopes) || []).filter((s) => s.code.length === 6 || s.code.length === 9);
  }

  async function start() {
    try {
      state.me = await api("/me");
    } catch (err) {
      if (err.status === 401) return showLogin("访问令牌无效或已过期，请重新输入。");
      const [t, x] = describeError(err);
      return showMessage(t, x);
    }
    $("login").hidden = true;
    $("who").hidden = false;
    $("who-text").textContent = state.me.user + "（" + state.me.role_label + "）";
    $("controls").hidden = false;
    const select = $("place-select");
    select.replaceChildren();
    for (const s of places()) select.append(el("option", { value: s.code, text: s.label }));
    const typed = state.me.role === "auditor" || !select.options.length;
    $("place-input-field").hidden = !typed;
    select.parentElement.hidden = typed;
    const h = readHash();
    state.code = h.code || (select.options.length ? select.options[0].value : "");
    state.year = h.year; state.asOf = h.asOf;
    if (state.code && !typed) select.value = state.code;
    $("place-input").value = state.code;
    $("year-input").value = state.year;
    $("asof-input").value = state.asOf;
    if (!state.code) {
      $("controls").open = true;
      return showMessage("请选择区县或乡镇", "你的令牌没有区县或乡镇范围；稽核员请输入 6 位区县代码或 9 位乡镇代码。", true);
    }
    await load();
  }

  // ------------------------------------------------------------------ the board
  async function load() {
    writeHash();
    $("message").hidden = true;
    document.body.dataset.state = "loading";
    const params = { year: state.year, as_of: state.asOf };
    // The charts are drawn for the width they are shown at, so their text is its real size on a phone.
    $("board").hidden = false;
    const width = String(Math.max(300, Math.min(1600, Math.round($("coverage-chart").clientWidth || 720))));
    let data, coverage, collection;
    try {
      [data, coverage, collection] = await Promise.all([
        api("/regions/" + encodeURIComponent(state.code) + "/dashboard", params),
        api("/regions/" + encodeURIComponent(state.code) + "/dashboard.svg", { ...params, chart: "coverage", width }, "text"),
        api("/regions/" + encodeURIComponent(state.code) + "/dashboard.svg", { ...params, chart: "collection", width }, "text"),
      ]);
    } catch (err) {
      $("board").hidden = true;
      document.body.dataset.state = "error";
      if (err.status === 401) return showLogin("访问令牌无效或已过期，请重新输入。");
      const [t, x] = describeError(err);
      return showMessage(t, x);
    }
    state.data = data;
    render(data, coverage, collection);
    document.body.dataset.state = "ready";
  }

  function putSvg(box, text) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    box.replaceChildren();
    if (svg && svg.nodeName.toLowerCase() === "svg") box.append(document.importNode(svg, true));
  }

  function stat(label, value, note, cls) {
    return el("div", { class: "stat " + (cls || "") }, el("div", { class: "stat-label", text: label }),
      el("div", { class: "stat-value", text: value }), el("div", { class: "stat-note", text: note }));
  }

  function gapCell(r, targetBp) {
    if (r.coverage_bp === null || targetBp === null) return el("td", { text: "—" });
    if (r.meets_target) return el("td", { class: "met", text: "已达标" });
    return el("td", { class: "short gap" }, "差 " + points(r.gap_bp), el("span", { class: "unit", text: " 个百分点" }),
      "（" + r.people_short + " 人）");
  }

  function rankRows(tbody, rows, targetBp) {
    tbody.replaceChildren();
    for (const r of rows) {
      const sub = r.subsidised ? [r.subsidised_coverage_percent, el("span", { class: "unit",
        text: "（" + r.subsidised_covered + "/" + r.subsidised + "）" })] : ["—"];
      tbody.append(el("tr", { "data-code": r.code },
        el("td", { class: "num", text: String(r.rank) }),
        el("td", { class: "place" }, el("a", { class: "drill", href: r.link, text: shortLabel(r.label) })),
        el("td", { class: "num", text: r.coverage_percent || "—" }),
        gapCell(r, targetBp),
        el("td", { class: "sub " + (r.subsidised_meets_target === false ? "short" : "") }, ...sub)));
    }
  }

  function render(d, coverageSvg, collectionSvg) {
    const t = d.target, tot = d.total;
    $("board-title").textContent = d.label + " · " + d.year + " 年度";
    $("board-basis").textContent = "统计日 " + d.day + "（" + d.year_basis_label + "）· 政策表 " + t.policy_version;
    $("query-summary").textContent = d.label + " · " + d.year + " 年度";
    const head = $("headline");
    head.replaceChildren(
      stat("参保率", tot.coverage_percent || "—",
        t.coverage_percent ? ("目标 " + t.coverage_percent + (tot.meets_target ? "，已达标" : "，还差 " + tot.people_short + " 人")) : "政策表未规定目标",
        tot.meets_target === false ? "alarm" : "good"),
      stat("资助对象参保率", tot.subsidised_coverage_percent || "—",
        (t.subsidised_coverage_percent ? "目标 " + t.subsidised_coverage_percent + "，" : "") +
          "未参保 " + (tot.subsidised - tot.subsidised_covered) + " 人",
        tot.subsidised_meets_target === false ? "alarm" : "good"),
      stat("征收进度", d.collection.collected_percent || "—",
        "已征收 " + yuan(d.collection.collected_fen) + " 元 / 应缴 " + yuan(d.collection.assessed_fen) + " 元"),
      stat("欠费合计", yuan(d.arrears.outstanding_fen) + " 元",
        d.arrears.persons + " 人 · 滞纳金 " + yuan(d.arrears.late_fee_fen) + " 元", d.arrears.rows ? "alarm" : "good"));
    $("target-note").textContent = t.coverage_percent
      ? "红色虚线为参保率目标 " + t.coverage_percent + "，资助参保对象目标 " + (t.subsidised_coverage_percent || "—") +
        "（政策表 " + t.policy_version + "）。横轴只显示数据所在区间，便于看出差距。"
      : "政策表未规定参保率目标。";
    putSvg($("coverage-chart"), coverageSvg);
    const county = d.kind === "county";
    $("rank-place-head").textContent = county ? "乡镇" : "网格";
    rankRows($("rank-table").querySelector("tbody"), county ? d.townships : d.grids, t.coverage_bp);
    $("grids-box").hidden = !county;
    $("grids-summary").textContent = "各网格（村、社区）排名，共 " + d.grids.length + " 个";
    rankRows($("grid-table").querySelector("tbody"), county ? d.grids : [], t.coverage_bp);

    const c = d.collection;
    $("collection-note").textContent = c.year + " 年度集中参保缴费期 " + c.concentrated_start + " 至 " + c.concentrated_end +
      "；与 " + c.last_year + " 年度同期（" + (c.last_concentrated_start || "—") + " 起）逐周对比。";
    putSvg($("collection-chart"), collectionSvg);
    const weeks = $("week-table").querySelector("tbody");
    weeks.replaceChildren();
    for (const w of c.weeks) {
      const pct = (bp) => (bp === null || bp === undefined ? "—" : points(bp) + "%");
      weeks.append(el("tr", {}, el("td", { text: "第 " + w.week + " 周" }),
        el("td", { class: "opt", text: w.from ? w.from + " 至 " + w.to : "—" }),
        el("td", { class: "num opt", text: yuan(w.assessed_fen) }), el("td", { class: "num", text: yuan(w.collected_fen) }),
        el("td", { class: "num", text: pct(w.collected_bp) }), el("td", { class: "num", text: pct(w.last_collected_bp) })));
    }

    const a = d.arrears;
    const kinds = { RESIDENT: "城乡居民", FLEXIBLE: "灵活就业", EMPLOYER: "单位职工" };
    const list = el("ul", { class: "plain-list" });
    for (const [k, v] of Object.entries(a.by_kind)) {
      list.append(el("li", { text: (kinds[k] || k) + "：" + v.rows + " 笔，欠费 " + yuan(v.outstanding_fen) + " 元" +
        (v.late_fee_fen ? "，滞纳金 " + yuan(v.late_fee_fen) + " 元" : "") }));
    }
    $("arrears-body").replaceChildren(
      el("p", { text: a.as_of + " 欠费 " + a.rows + " 笔、" + a.persons + " 人，合计 " + a.outstanding_yuan +
        " 元；应缴滞纳金 " + a.late_fee_yuan + " 元。" }), list);

    $("recon-panel").hidden = !county;
    const recon = $("recon-table").querySelector("tbody");
    recon.replaceChildren();
    for (const r of d.reconciliation) {
      recon.append(el("tr", {}, el("td", { text: r.business_date }),
        el("td", {}, el("span", { class: "state " + r.state, text: r.state_label })),
        el("td", { class: "num opt", text: String(r.statements) }), el("td", { class: "num", text: yuan(r.collected_fen) }),
        el("td", { class: "num", text: yuan(r.recorded_fen) }), el("td", { class: "num", text: yuan(r.difference_fen) }),
        el("td", { class: "num opt", text: String(r.open_discrepancies) })));
    }
    $("recon-empty").hidden = d.reconciliation.length > 0;
    $("board").hidden = false;
  }

  async function exportPng() {
    $("png-status").textContent = "正在生成……";
    try {
      const blob = await api("/regions/" + encodeURIComponent(state.code) + "/dashboard.png",
        { year: state.year || (state.data && state.data.year), as_of: state.asOf }, "blob");
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: "参保率-" + state.code + ".png" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      $("png-status").textContent = "已导出 PNG 图表。";
    } catch (err) {
      $("png-status").textContent = describeError(err).join("：");
    }
  }

  // ------------------------------------------------------------------ wiring
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    state.token = token;
    start();
  });
  $("logout").addEventListener("click", logout);
  $("query-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.code = ($("place-input-field").hidden ? $("place-select").value : $("place-input").value).trim();
    state.year = $("year-input").value.trim();
    state.asOf = $("asof-input").value.trim();
    load();
  });
  $("png-export").addEventListener("click", exportPng);

  takeTokenFromAddress();
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (!state.token) showLogin(""); else start();
})();
