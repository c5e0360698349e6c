
"use strict";
// The grid worker's page: pick a grid, see who is not covered and why, open one person, export.
// All data comes from the ledger API with the worker's bearer token; nothing is sent elsewhere.
// The page state lives in the address hash (#grid=…&year=…&as_of=…&reason=…&person=…), so a
// filtered list or an opened person can be bookmarked, shared with a colleague who has the
// same grid, and reloaded.
(function () {
  const TOKEN_KEY = "ledger.web.token";
  const LABELS = JSON.parse(document.getElementById("labels").textContent);
  const $ = (id) => document.getElementById(id);
  const PHONE = window.matchMedia("(max-width: 600px)");
  const state = {
    token: null, me: null,
    code: "", year: "", asOf: "", reason: "", person: "", q: "", page: 1,
    total: 0, pages: 1, byReason: {},
    loaded: null,  // {code, year, asOf, day}: what the list on screen is for
    gaps: [], coverage: null, opener: null, arrears: [],
  };

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function setPageState(name) { document.body.dataset.state = name; }

  function yuan(fen) {
    if (fen === null || fen === undefined) return "—";
    const sign = fen < 0 ? "-" : "";
    const abs = Math.abs(fen);
    return sign + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0");
  }

  function thisYear() { return String(new Date().getFullYear()); }

  function areaWord(code) { return code.length === 9 ? "乡镇" : code.length === 6 ? "区县" : "网格"; }
  const PER_PAGE = 50;  // rows per page: a phone gets a short page, never the whole grid

  function scopeLabel(code) {
    const scope = ((state.me && state.me.scopes) || []).find((s) => s.code === code);
    return scope ? scope.label : areaWord(code) + " " + code;
  }

  function scopeText() {
    const scopes = ((state.me && state.me.scopes) || []).map((s) => s.code);
    return scopes.length ? scopes.join("、") : "（无）";
  }

  // ------------------------------------------------------------------ the address
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const reason = (p.get("reason") || "").trim();
    return {
      code: (p.get("grid") || "").trim(), year: (p.get("year") || "").trim(), asOf: (p.get("as_of") || "").trim(),
      reason: reason in LABELS.reasons ? reason : "", person: (p.get("person") || "").trim(),
      q: (p.get("q") || "").trim().slice(0, 40), page: Math.max(1, Math.min(100000, parseInt(p.get("page"), 10) || 1)),
    };
  }

  function writeHash() {
    const p = new URLSearchParams();
    if (state.code) p.set("grid", state.code);
    if (state.year) p.set("year", state.year);
    if (state.asOf) p.set("as_of", state.asOf);
    if (state.reason) p.set("reason", state.reason);
    if (state.q) p.set("q", state.q);
    if (state.page > 1) p.set("page", String(state.page));
    if (state.person) p.set("person", state.person);
    const hash = p.toString();
    history.replaceState(null, "", location.pathname + location.search + (hash ? "#" + hash : ""));
  }

  // A token opened as /web/?token=… is kept for this tab and removed from the address at once,
  // so it stays out of the history, bookmarks and screenshots.
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
    constructor(status, body, requestId) {
      super((body && body.message) || "HTTP " + status);
      this.status = status;
      this.body = body || {};
      this.requestId = requestId || "";
    }
  }

  async function api(path, params, raw) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
    }
    let response;
    try {
      response = await fetch(url, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, { code: "NETWORK" });
    }
    if (!response.ok) {
      let body = {};
      try { body = await response.json(); } catch (e) { /* not JSON: keep the status */ }
      throw new ApiError(response.status, body, response.headers.get("X-Request-ID"));
    }
    return raw ? response : response.json();
  }

  // The Chinese part the API puts in parentheses at the end of 401/403 messages.
  function chineseOf(message) {
    const m = /\(([^()]*[\u4e00-\u9fff][^()]*)\)\s*$/.exec(message || "");
    return m ? m[1] : "";
  }

  // [title, text] of an API error, in Chinese, for the area `code` the worker asked about.
  function describeError(err, code) {
    const b = err.body;
    const year = state.year || (state.loaded && state.loaded.year) || thisYear();
    switch (err.status) {
      case 0: return ["无法连接服务器", "请检查网络后重试。"];
      case 401: return ["访问令牌无效或已过期", chineseOf(b.message) || "请重新输入访问令牌。"];
      case 403:
        if (b.code === "SCOPE_FORBIDDEN" && code) {
          return [chineseOf(b.message) || `你没有${areaWord(code)} ${code} 的权限`,
            `你的访问令牌只能查看：${scopeText()}。如需查看其他网格，请联系医保经办机构。`];
        }
        return ["没有权限", chineseOf(b.message) || "你的角色不能查看此内容。"];
      case 404:
        if (b.code === "GRID_UNKNOWN" || b.code === "TOWNSHIP_UNKNOWN") {
          return [`找不到${areaWord(code)} ${code}`, "账本中没有居住或参保在这里的人员，请核对代码。"];
        }
        if (b.code === "POLICY_YEAR_UNKNOWN") return [`没有 ${year} 年度的缴费政策`, "请选择其他参保年度。"];
        if (b.code === "PERSON_NOT_FOUND") return ["找不到该参保人", "账本中没有此人的记录。"];
        return ["找不到", b.message || ""];
      case 422:
        if (b.code === "GRID_FORMAT" || b.code === "REGION_FORMAT") {
          return ["代码格式不对", "请输入 12 位网格（村/社区）代码、9 位乡镇代码或 6 位区县代码。"];
        }
        if (b.code === "DATE_INVALID") return ["日期格式不对", "统计日期请按 年-月-日 填写。"];
        return ["查询条件有误", b.message || ""];
      default:
        return ["服务器出错", "请稍后重试；如仍出错，请把请求编号 " + (err.requestId || "（无）") + " 告诉管理员。"];
    }
  }

  // ------------------------------------------------------------------ screens
  function showMessage(title, text, kind) {
    $("message").classList.toggle("info", kind === "info");
    $("message-title").textContent = title;
    $("message-text").textContent = text || "";
    $("message").hidden = false;
  }

  function hideMessage() { $("message").hidden = true; }

  function showLogin(error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of ["controls", "result", "message", "who", "person"]) $(id).hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !error;
    $("login-error").textContent = error || "";
    $("token-input").value = "";
    setPageState("login");
  }

  async function enter() {
    $("login").hidden = true;
    setPageState("loading");
    try {
      state.me = await api("/me");
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, "").join("："));
      showMessage(...describeError(err, ""));
      return setPageState("error");
    }
    $("who-text").textContent = `${state.me.role_label} ${state.me.user}`;
    $("import-link").hidden = state.me.role !== "clerk";  // the import page is the clerks' (POST /imports)
    // the maker-checker page: clerks propose, approvers decide (GET /changes, POST /changes/{id}/approve|reject)
    $("changes-link").hidden = !["clerk", "approver"].includes(state.me.role);
    $("who").hidden = false;
    if (!state.me.reads_grids) {
      showMessage(`你的角色「${state.me.role_label}」不能查看网格名单`, state.me.role === "approver"
        ? "审核人员请点上方「待审核变更」查看和审核变更。" : "请使用网格员、经办或审计的访问令牌。");
      return setPageState("error");
    }
    fillPicker();
    $("controls").hidden = false;
    if (!state.code) {
      const first = state.me.scopes.find((s) => s.kind === "grid" || s.kind === "township" ||
        (s.kind === "region" && state.me.role !== "grid_worker"));
      state.code = first ? first.code : "";
    }
    showQuery();
    if (!state.code) {
      showMessage("请选择或输入网格代码", "输入 12 位网格（村/社区）代码或 9 位乡镇代码后点“查询”。", "info");
      return setPageState("idle");
    }
    await load();
  }

  const OTHER = "other";  // the picker's "another code" choice: shows the code field

  function fillPicker() {
    const select = $("grid-select");
    // Clerks pick one of their counties (then a township or grid of it); grid workers their grids.
    const areas = state.me.scopes.filter((s) => s.kind === "grid" || s.kind === "township" ||
      (s.kind === "region" && state.me.role !== "grid_worker"));
    select.replaceChildren(...areas.map((s) => el("option", { value: s.code, text: s.label })),
      el("option", { value: OTHER, text: areas.length ? "输入其他代码…" : "输入网格或乡镇代码" }));
  }

  function showQuery() {
    const select = $("grid-select");
    const inScope = [...select.options].some((o) => o.value === state.code && o.value !== OTHER);
    select.value = inScope ? state.code : OTHER;
    $("grid-input").value = inScope ? "" : state.code;
    $("grid-input-field").hidden = inScope;
    $("year-input").value = state.year || "";
    $("asof-input").value = state.asOf;
  }

  // Without a year the server picks one: this year, or the latest with data (and says which, year_basis_label).
  function listQuery() {
    return { year: state.year, as_of: state.asOf, reason: state.reason, q: state.q, page: state.page, per_page: PER_PAGE };
  }

  async function load() {
    const query = { year: state.year, as_of: state.asOf };
    const code = state.code;
    if (code.length === 6) return loadRegion(code);
    $("areas").hidden = true;
    const path = "/grids/" + encodeURIComponent(code);
    hideMessage();
    setPageState("loading");
    $("result").setAttribute("aria-busy", "true");
    let coverage, list;
    try {
      coverage = await api(path + "/coverage", query);
      // The list for the coverage's year and day, so both speak of the same thing.
      list = await api(path + "/gaps", { ...listQuery(), year: coverage.year, as_of: state.asOf });
    } catch (err) {
      $("result").hidden = true;
      state.loaded = null;
      if (err.status === 401) return showLogin(describeError(err, code).join("："));
      $("controls").open = true;
      $("query-summary").textContent = "";
      showMessage(...describeError(err, code));
      return setPageState("error");
    } finally {
      $("result").removeAttribute("aria-busy");
    }
    if (code !== state.code) return;  // the worker asked for another area meanwhile
    // Subsidised people first (资助参保对象 must be 100% covered); the API already orders them so.
    takeList(list);
    state.coverage = coverage;
    state.loaded = { code, year: String(list.year), asOf: state.asOf, day: coverage.day };
    $("result").hidden = false;
    $("query-summary").textContent = `${scopeLabel(code)} · ${state.loaded.year} 年度`;
    if (PHONE.matches) $("controls").open = false;  // the list matters on a phone; the form is one tap away
    renderSummary();
    renderList();
    setPageState("ready");
    loadArrears(code, coverage.day);
    loadFees(code, coverage.day);
    if (state.person) openPerson(state.person, null);
  }

  function takeList(list) {
    state.gaps = list.gaps.map((g, i) => [g, i])
      .sort((a, b) => (b[0].subsidised - a[0].subsidised) || (a[1] - b[1])).map((p) => p[0]);
    state.total = list.total;
    state.pages = list.pages;
    state.page = list.page;
    state.byReason = list.by_reason || {};
  }

  // Another page, reason or search of the area on screen: only the list is read again.
  async function loadList() {
    if (!state.loaded) return;
    const { code, year } = state.loaded;
    $("result").setAttribute("aria-busy", "true");
    let list;
    try {
      list = await api("/grids/" + encodeURIComponent(code) + "/gaps", { ...listQuery(), year });
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, code).join("："));
      showMessage(...describeError(err, code));
      return;
    } finally {
      $("result").removeAttribute("aria-busy");
    }
    if (code !== state.code) return;
    hideMessage();
    takeList(list);
    renderList();
  }

  // ------------------------------------------------------------------ a county (区县): pick a township or grid
  async function loadRegion(code) {
    hideMessage();
    setPageState("loading");
    $("result").hidden = true;
    state.loaded = null;
    let body;
    try {
      body = await api("/regions/" + encodeURIComponent(code) + "/areas", { year: state.year, as_of: state.asOf });
    } catch (err) {
      $("areas").hidden = true;
      if (err.status === 401) return showLogin(describeError(err, code).join("："));
      showMessage(...describeError(err, code));
      return setPageState("error");
    }
    if (code !== state.code) return;
    const pick = (area) => {
      const button = el("button", { type: "button", class: "secondary small", "data-code": area.code },
        area.label, " ", el("span", { class: "hint", text: `${area.covered}/${area.residents} 人 · ${area.coverage_percent || "—"}` }));
      button.addEventListener("click", () => {
        Object.assign(state, { code: area.code, reason: "", q: "", page: 1, person: "" });
        writeHash();
        showQuery();
        load();
      });
      return button;
    };
    $("areas-title").textContent = `${body.label} · 请选择乡镇或网格`;
    $("areas-note").textContent = `${body.year} 年度（${body.year_basis_label}）· 统计日 ${body.day} · 共 ${body.townships.length} 个乡镇（街道）` +
      (body.places_note ? " · " + body.places_note : "");
    $("areas-list").replaceChildren(...body.townships.map((t) => el("div", { class: "township" },
      pick(t), el("div", { class: "grids" }, ...t.grids.map(pick)))));
    if (!body.townships.length) $("areas-list").replaceChildren(el("p", { class: "empty", text: "账本中还没有该区县的居民。" }));
    $("areas").hidden = false;
    $("query-summary").textContent = body.label;
    setPageState("areas");
  }

  // ------------------------------------------------------------------ arrears (欠费名单)
  // Read after the gap list, on its day; a refusal or failure here leaves the gap list standing.
  // A row with nothing outstanding is a month paid late whose late fee is still owed (fee_only).
  async function loadArrears(code, day) {
    const section = $("arrears-section");
    section.dataset.state = "loading";
    $("arrears-count").textContent = "读取中…";
    $("arrears-rows").replaceChildren();  // never the rows of the area asked before
    $("arrears").hidden = true;
    $("arrears-empty").hidden = true;
    let body;
    try {
      body = await api("/arrears", { grid: code, as_of: day });
    } catch (err) {
      if (code !== state.code) return;
      state.arrears = [];
      $("arrears-rows").replaceChildren();
      $("arrears").hidden = true;
      $("arrears-empty").hidden = false;
      $("arrears-empty").classList.add("failed");
      $("arrears-empty").textContent = "欠费名单未能读取：" + describeError(err, code).join("：");
      section.dataset.state = "error";
      return;
    }
    if (code !== state.code) return;
    state.arrears = body.arrears;
    const feeOnly = body.arrears.filter((a) => a.fee_only).length;
    $("arrears-count").textContent = `共 ${body.count} 条 · 欠缴 ${yuan(body.outstanding_fen)} 元 · 滞纳金 ${yuan(body.late_fee_fen)} 元` +
      (feeOnly ? `（其中 ${feeOnly} 条${LABELS.arrears_status.fee_only}）` : "");
    $("arrears-rows").replaceChildren(...body.arrears.map(arrearsRow));
    $("arrears").hidden = body.arrears.length === 0;
    $("arrears-empty").hidden = body.arrears.length !== 0;
    $("arrears-empty").classList.remove("failed");
    $("arrears-empty").textContent = "统计日没有欠费，也没有未缴的滞纳金。";
    const employers = body.employers || [];
    $("arrears-employers").replaceChildren(...employers.map((e) => el("li", { "data-employer-id": e.employer_id,
      text: `单位 ${e.employer_id}：${e.persons} 名职工，欠缴 ${yuan(e.outstanding_fen)} 元 + 滞纳金 ` +
        `${yuan(e.late_fee_fen)} 元 = 合计 ${yuan(e.total_fen)} 元` })));
    $("arrears-employers").hidden = employers.length === 0;
    section.dataset.state = "ready";
  }

  // ------------------------------------------------------------------ late fees (滞纳金清单)
  // Every employer month of the area with a fee accrued (paid and waived ones too), the arithmetic spelt out.
  async function loadFees(code, day) {
    const section = $("fees-section");
    section.dataset.state = "loading";
    $("fees-count").textContent = "读取中…";
    $("fees-rows").replaceChildren();
    $("fees").hidden = true;
    $("fees-empty").hidden = true;
    let body;
    try {
      body = await api("/fees", { grid: code, as_of: day, all: "true" });
    } catch (err) {
      if (code !== state.code) return;
      $("fees-empty").hidden = false;
      $("fees-empty").classList.add("failed");
      $("fees-empty").textContent = "滞纳金清单未能读取：" + describeError(err, code).join("：");
      section.dataset.state = "error";
      return;
    }
    if (code !== state.code) return;
    $("fees-count").textContent = `共 ${body.count} 条 · 应计 ${yuan(body.accrued_fen)} 元 · 已缴 ${yuan(body.fee_paid_fen)} 元` +
      ` · 减免 ${yuan(body.waived_fen)} 元 · 尚欠 ${yuan(body.owed_fen)} 元`;
    $("fees-rows").replaceChildren(...body.fees.map((f) => el("tr", { class: "arrears-card", "data-person-id": f.person_id,
      "data-period": f.period, "data-status": f.fee_status },
      el("td", { "data-label": "单位", text: f.employer_id }),
      el("td", { "data-label": "姓名" }, el("span", { class: "name", text: f.name || "（无姓名）" }), " ",
        el("span", { class: "idno", text: f.id_number || "" })),
      el("td", { "data-label": "费款所属期", text: f.period }),
      el("td", { "data-label": "计算过程", class: "arithmetic", text: f.arithmetic }),
      el("td", { class: "num", "data-label": "已缴（元）", text: yuan(f.fee_paid_fen) }),
      el("td", { class: "num late-fee", "data-label": "尚欠（元）", text: yuan(f.owed_fen) }),
      el("td", { "data-label": "状态" }, el("span", { class: "status", text: f.fee_status_label }),
        f.waived ? el("span", { class: "hint", text: ` 减免理由：${f.waiver_reason}；审批人：${f.waiver_approver}` }) : null))));
    $("fees").hidden = body.fees.length === 0;
    $("fees-empty").hidden = body.fees.length !== 0;
    $("fees-empty").classList.remove("failed");
    $("fees-empty").textContent = "统计日没有计收滞纳金的单位欠费。";
    section.dataset.state = "ready";
  }

  // The arrears and fee files of the area on screen (the same fetch-then-save as the gap list's export).
  async function exportArea(path, label, statusId, buttonIds) {
    if (!state.loaded) return;
    const { code } = state.loaded;
    const day = state.coverage ? state.coverage.day : state.asOf;
    const status = $(statusId);
    const buttons = buttonIds.map($);
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = "正在导出…";
    try {
      const response = await api(path, { grid: code, as_of: day }, true);
      const name = await saveFile(response, `${label}_${code}.${path.split(".").pop()}`);
      status.textContent = `已导出 ${response.headers.get("X-Row-Count") || ""} 条：${name}`;
      status.dataset.file = name;
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, code).join("："));
      status.textContent = "导出失败：" + describeError(err, code).join("，");
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function arrearsRow(a) {
    const status = a.fee_only ? LABELS.arrears_status.fee_only : LABELS.arrears_status.outstanding;
    const how = a.fee_only ? `逾期 ${a.days_overdue} 天，${a.paid_in_full_on} 缴清费款` : `逾期 ${a.days_overdue} 天`;
    return el("tr", { class: "arrears-card" + (a.fee_only ? " fee-only" : ""), "data-person-id": a.person_id,
      "data-period": a.period, "data-fee-only": String(Boolean(a.fee_only)) },
      el("td", { "data-label": "姓名" }, el("span", { class: "name", text: a.name || "（无姓名）" })),
      el("td", { "data-label": "证件号码" }, el("span", { class: "idno", text: a.id_number || "—" })),
      el("td", { "data-label": "类别", text: (LABELS.arrears_kinds[a.kind] || a.kind) +
        (a.employer_id ? " · 单位 " + a.employer_id : "") }),
      el("td", { "data-label": "费款所属期", text: a.period }),
      el("td", { class: "num", "data-label": "应缴（元）", text: yuan(a.due_fen) }),
      el("td", { class: "num", "data-label": "欠缴（元）", text: yuan(a.outstanding_fen) }),
      el("td", { class: "num late-fee", "data-label": "滞纳金（元）", text: yuan(a.late_fee_fen) }),
      el("td", { "data-label": "状态" }, el("span", { class: "status" + (a.fee_only ? " fee-only" : ""), text: status }),
        " ", el("span", { class: "hint", text: how })));
  }

  function renderSummary() {
    const c = state.coverage;
    $("result-title").textContent = `${c.label || scopeLabel(state.loaded.code)} · ${state.loaded.year} 年度 · 统计日 ${c.day}`;
    // Which year and day are shown, and why (the year was not given: the latest with data).
    $("result-basis").textContent = `显示 ${state.loaded.year} 年度（${c.year_basis_label || "按查询的年度"}），统计日 ${c.day}。` +
      (state.year ? "" : "可在“查询条件”中改选参保年度和统计日期。") + (c.places_note ? " " + c.places_note : "");
    $("coverage-rate").textContent = c.coverage_percent || "—";
    $("coverage-bar").style.width = (c.coverage_bp || 0) / 100 + "%";
    $("coverage-note").textContent = `${c.covered} / ${c.residents} 人已参保`;
    const none = c.subsidised === 0;
    $("subsidised-rate").textContent = none ? "—" : c.subsidised_coverage_percent;
    $("subsidised-bar").style.width = (c.subsidised_coverage_bp || 0) / 100 + "%";
    $("subsidised-note").textContent = none ? "本网格无资助参保对象" : `${c.subsidised_covered} / ${c.subsidised} 人已参保`;
    $("stat-subsidised").classList.toggle("alarm", !none && c.subsidised_coverage_bp < 10000);
  }

  function renderList() {
    const counts = state.byReason;
    const all = Object.values(counts).reduce((a, b) => a + b, 0);
    const chips = [chip("", "全部", all)];
    for (const reason of Object.keys(LABELS.reasons)) {
      if (reason in counts || reason === state.reason) chips.push(chip(reason, LABELS.reasons[reason], counts[reason] || 0));
    }
    $("chips").replaceChildren(...chips);
    const shown = state.gaps;
    $("gap-count").textContent = (state.q ? `找到 ${state.total} 人` + (state.reason ? `（本原因，共找到 ${all} 人）` : "")
      : state.reason ? `筛选后 ${state.total} 人（共 ${all} 人）` : `共 ${state.total} 人`) +
      (state.pages > 1 ? ` · 第 ${state.page}/${state.pages} 页` : "");
    $("gap-rows").replaceChildren(...shown.map(row));
    $("gaps").hidden = shown.length === 0;
    $("empty").hidden = shown.length !== 0;
    $("empty").textContent = state.q ? `没有找到“${state.q}”。` :
      all === 0 ? "本网格居民全部参保，没有需要跟进的人员。" : state.total ? "本页没有人员。" : "没有符合此原因的人员。";
    $("pager").hidden = state.pages <= 1;
    $("page-text").textContent = `第 ${state.page} / ${state.pages} 页，共 ${state.total} 人`;
    $("page-prev").disabled = state.page <= 1;
    $("page-next").disabled = state.page >= state.pages;
    $("search-input").value = state.q;
    $("search-clear").hidden = !state.q;
    $("export-status").textContent = "";
  }

  function chip(reason, label, count) {
    const button = el("button", {
      type: "button", class: "chip" + (reason === "SUBSIDISED_NOT_COVERED" ? " sub" : ""),
      "data-reason": reason, "aria-pressed": String(state.reason === reason),
    }, label, " ", el("span", { class: "n", text: String(count) }));
    button.addEventListener("click", () => {
      state.reason = reason;
      state.page = 1;
      writeHash();
      loadList();
    });
    return button;
  }

  function row(g) {
    const category = g.subsidy_category ? LABELS.subsidy_categories[g.subsidy_category] || g.subsidy_category : "";
    const tr = el("tr", {
      class: "gap-card" + (g.subsidised ? " subsidised" : ""), tabindex: "0",
      "data-person-id": g.person_id, "data-reason": g.reason,
    },
      el("td", { "data-label": "姓名" }, el("span", { class: "name", text: g.name || "（无姓名）" }),
        g.subsidised ? " " : null,
        g.subsidised ? el("span", { class: "badge", text: "资助参保对象" + (category ? " · " + category : "") }) : null),
      el("td", { "data-label": "证件号码" }, el("span", { class: "idno", text: g.id_number || "—" })),
      el("td", { "data-label": "网格", text: g.grid_label || g.grid_code, title: g.grid_code }),
      el("td", { "data-label": "原因" }, el("span", { class: "reason " + g.reason, text: g.label || g.reason }),
        // Each open transfer's state on the list's day (待转出 / 待转入 / 已逾期 N 个工作日), from the server.
        ...(g.transfers || []).map((t) => el("span", {
          class: "transfer" + (t.overdue ? " overdue" : ""), "data-transfer-id": t.transfer_id,
          title: t.explanation || "", text: "转移单 " + t.transfer_id + "：" + t.label,
        }))),
      el("td", { class: "num", "data-label": "欠缴（元）", text: yuan(g.outstanding_fen) }),
      el("td", { class: "open" }, el("button", { type: "button", class: "secondary", text: "查看待遇" })));
    tr.addEventListener("click", () => openPerson(g.person_id, tr));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target === tr) openPerson(g.person_id, tr);
    });
    return tr;
  }

  // ------------------------------------------------------------------ one person
  async function openPerson(personId, opener) {
    const line = state.gaps.find((g) => g.person_id === personId);
    state.person = personId;
    state.opener = opener;
    writeHash();
    $("person-name").textContent = line ? line.name : "参保人";
    $("person-id").textContent = line ? line.id_number : "";
    $("person-contact").hidden = true;
    $("person-headline").className = "headline";
    $("person-headline").textContent = "正在查询…";
    $("person-lines").replaceChildren();
    $("person-advice").hidden = true;
    $("person-raw").hidden = true;
    $("person").hidden = false;
    $("person").dataset.state = "loading";
    $("person-close").focus();
    let answer;
    try {
      answer = await api("/entitlements/" + encodeURIComponent(personId),
        { year: state.loaded ? state.loaded.year : state.year, on: line ? line.day : (state.loaded && state.loaded.day) });
    } catch (err) {
      if (state.person !== personId) return;
      const [title, text] = describeError(err, line ? line.grid_code : "");
      $("person-headline").textContent = title + (text ? "：" + text : "");
      $("person").dataset.state = "error";
      return;
    }
    if (state.person !== personId) return;
    const ex = answer.explanation;
    $("person-name").textContent = answer.name || "参保人";
    $("person-id").textContent = answer.id_number;
    showContact(answer);
    const waiting = !answer.covered && answer.resident_year && answer.resident_year.waiting_until &&
      answer.resident_year.funded && String(answer.on) <= String(answer.resident_year.waiting_until);
    $("person-headline").className = "headline" + (answer.covered ? " covered" : waiting ? " waiting" : "");
    $("person-headline").textContent = ex.headline;
    $("person-lines").replaceChildren(...ex.lines.flatMap((l) => [el("dt", { text: l.topic }), el("dd", { text: l.text })]));
    $("person-advice").textContent = ex.advice ? "建议：" + ex.advice : "";
    $("person-advice").hidden = !ex.advice;
    $("person-reason").textContent = answer.reason || "";
    const ry = answer.resident_year;
    $("person-waiting").textContent = ry && ry.waiting_reason ? "waiting: " + ry.waiting_reason : "";
    $("person-raw").hidden = false;
    $("person").dataset.state = "ready";
  }

  // Address and phone as the household registry gave them; a phone the viewer may see in full is a tel: link
  // (one tap calls it on a phone). Masked ones (138****0001) are text only.
  function showContact(answer) {
    const parts = [];
    if (answer.phone) {
      const digits = answer.phone.replace(/[^0-9+]/g, "");
      parts.push("电话 ", answer.contact_masked ? el("span", { class: "phone", text: answer.phone })
        : el("a", { class: "phone", href: "tel:" + digits, text: answer.phone }));
    }
    if (answer.address) parts.push((parts.length ? " · " : "") + "地址 ", el("span", { class: "address", text: answer.address }));
    $("person-contact").replaceChildren(...parts);
    $("person-contact").hidden = parts.length === 0;
  }

  function closePerson() {
    $("person").hidden = true;
    state.person = "";
    writeHash();
    if (state.opener && document.body.contains(state.opener)) state.opener.focus();
    state.opener = null;
  }

  // ------------------------------------------------------------------ exports
  function fileName(response, fallback) {
    const m = /filename\*=UTF-8''([^;]+)/i.exec(response.headers.get("Content-Disposition") || "");
    return m ? decodeURIComponent(m[1]) : fallback;
  }

  // A plain link cannot send the Authorization header: fetch the file, then save the blob
  // under the server's file name (or the fallback). Returns the name saved.
  async function saveFile(response, fallback) {
    const blob = await response.blob();
    const name = fileName(response, fallback);
    const href = URL.createObjectURL(blob);
    const link = el("a", { href, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    return name;
  }

  async function exportList(extension) {
    if (!state.loaded) return;
    const { code, year, asOf } = state.loaded;
    const status = $("export-status");
    const buttons = [$("export-csv"), $("export-xlsx")];
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = "正在导出…";
    try {
      const response = await api(`/grids/${encodeURIComponent(code)}/gaps.${extension}`,
        { year, as_of: asOf, reason: state.reason }, true);
      const name = await saveFile(response, `应保尽保名单_${code}_${year}.${extension}`);
      status.textContent = `已导出 ${response.headers.get("X-Row-Count") || ""} 人：${name}`;
      status.dataset.file = name;
    } catch (err) {
      if (err.status === 401) return showLogin(describeError(err, code).join("："));
      status.textContent = "导出失败：" + describeError(err, code).join("，");
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // ------------------------------------------------------------------ events
  function applyHash() {
    const h = readHash();
    const reload = h.code !== state.code || (h.year || "") !== (state.year || "") || h.asOf !== state.asOf;
    const relist = h.reason !== state.reason || h.q !== state.q || h.page !== state.page;
    Object.assign(state, { code: h.code || state.code, year: h.year, asOf: h.asOf, reason: h.reason, q: h.q, page: h.page });
    if (!state.me) return;
    showQuery();
    if (reload) {
      state.person = h.person;
      return load();
    }
    if (state.loaded && relist) loadList();
    if (h.person && h.person !== state.person) openPerson(h.person, null);
    else if (!h.person && state.person) closePerson();
  }

  function bind() {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      enter();
    });
    $("logout").addEventListener("click", () => {
      state.me = null;
      state.loaded = null;
      showLogin("");
    });
    $("query-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const picked = $("grid-select").value;
      state.code = picked === OTHER ? $("grid-input").value.trim() : picked;
      state.year = $("year-input").value.trim();
      state.asOf = $("asof-input").value;
      state.reason = "";
      state.q = "";
      state.page = 1;
      state.person = "";
      writeHash();
      if (!state.code) return showMessage("请选择或输入网格代码", "", "info");
      load();
    });
    $("grid-select").addEventListener("change", () => {
      const other = $("grid-select").value === OTHER;
      $("grid-input-field").hidden = !other;
      if (other) return $("grid-input").focus();
      $("grid-input").value = "";
      $("query-form").requestSubmit();
    });
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.q = $("search-input").value.trim().slice(0, 40);
      state.page = 1;
      writeHash();
      loadList();
    });
    $("search-clear").addEventListener("click", () => {
      state.q = "";
      state.page = 1;
      writeHash();
      loadList();
    });
    const turn = (by) => {
      state.page = Math.min(Math.max(1, state.page + by), state.pages);
      writeHash();
      loadList().then(() => $("gaps").scrollIntoView({ block: "start" }));
    };
    $("page-prev").addEventListener("click", () => turn(-1));
    $("page-next").addEventListener("click", () => turn(1));
    $("export-csv").addEventListener("click", () => exportList("csv"));
    $("export-xlsx").addEventListener("click", () => exportList("xlsx"));
    const arrearsButtons = ["arrears-csv", "arrears-xlsx"];
    $("arrears-csv").addEventListener("click", () => exportArea("/arrears.csv", "欠费名单", "arrears-export-status", arrearsButtons));
    $("arrears-xlsx").addEventListener("click", () => exportArea("/arrears.xlsx", "欠费名单", "arrears-export-status", arrearsButtons));
    const feeButtons = ["fees-csv", "fees-xlsx"];
    $("fees-csv").addEventListener("click", () => exportArea("/fees.csv", "滞纳金清单", "fees-export-status", feeButtons));
    $("fees-xlsx").addEventListener("click", () => exportArea("/fees.xlsx", "滞纳金清单", "fees-export-status", feeButtons));
    $("person-close").addEventListener("click", closePerson);
    $("person").addEventListener("click", (e) => { if (e.target === $("person")) closePerson(); });
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("person").hidden) closePerson(); });
    window.addEventListener("hashchange", applyHash);
  }

  function start() {
    takeTokenFromAddress();
    bind();
    Object.assign(state, readHash());
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (!state.token) return showLogin("");
    enter();
  }

  start();
})();
